"""One module per subcommand; each exposes plain functions that read a folder and write one."""
