"""Data only: the edXML XSDs. This file lets the folder be found with importlib.resources."""
