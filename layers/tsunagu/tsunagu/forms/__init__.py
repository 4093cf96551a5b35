"""Web forms: their definitions, and what a submission must look like to be accepted."""
