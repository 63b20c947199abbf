"""I/O: the run directory (append-only files, layout, config), input readers, seed
tasks, prompt templates and the bundled data they come from."""
