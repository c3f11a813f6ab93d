"""The settings of each part of the platform; ``sage_platform.config.Settings`` is all of them together."""
