"""Lienthong: a hub through which government offices exchange signed edXML documents."""

__version__ = "0.1.0"
