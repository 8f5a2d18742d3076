"""The command line: thin commands over :class:`stackyard.context.Context`."""
