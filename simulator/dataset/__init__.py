"""The batch generator: a dataset's plan, its tables and layouts, their CSV text, the files written and the day plot."""
