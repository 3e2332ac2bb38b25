"""One module per process adds its sub-command to `aftersales`: a module here that defines
``app`` (a ``typer.Typer``) and ``NAME`` becomes ``aftersales NAME …``."""
