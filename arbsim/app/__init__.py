"""The application: configuration, the plug-in registry, the runners and the CLI."""
