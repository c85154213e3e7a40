"""The agency side: how a document-management system talks to a Lienthong hub.

Adapters reach the hub over HTTP only; they may use the pure parts of the project (the edXML
model, reader and writer, and signing) but never hub internals or the database.
"""
