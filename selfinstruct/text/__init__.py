"""Pure: turn what a model wrote into records (task lists, instances, labels, traces,
answers) and the JSON schemas that ask for those shapes. No I/O happens here."""
