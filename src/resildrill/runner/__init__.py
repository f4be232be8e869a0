"""Running a drill: the timeline of steps, the journal, rollback, signals and the run registry."""
