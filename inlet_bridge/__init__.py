"""inlet-bridge: booking events from any PMS become Inlet access grants."""

__version__ = "0.1.0"
