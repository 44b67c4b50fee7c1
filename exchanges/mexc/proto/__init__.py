"""The MEXC push schema as a ``.proto`` file and the script that regenerates
:mod:`exchanges.mexc.pb` from it (``python -m exchanges.mexc.proto.regenerate``)."""
