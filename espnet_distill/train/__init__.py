"""What every trainer shares: the Lightning loop, fault handling, resume, progress; the unit-LM
trainer."""
