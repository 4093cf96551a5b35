"""Reports: counters kept on the events stream, and the figures read from them (per mail, per
journey and node), with each metric's definition written down in ``definitions``."""
