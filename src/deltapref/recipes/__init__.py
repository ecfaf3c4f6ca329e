"""Running several commands as one: a recipe file read and checked (``recipe_file``), its stages
run in order with content-keyed caching (``pipeline``), one recipe over seeds (``sweep``), and the
built-in demo recipe (``demo``)."""
