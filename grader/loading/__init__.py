"""Load what a kernel exported, with safe loaders only: plain values, export kinds, models rebuilt as FX graphs."""
