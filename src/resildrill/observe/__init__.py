"""What was seen: probes, their fixed-cadence sampler, and 100 ms bucketed series."""
