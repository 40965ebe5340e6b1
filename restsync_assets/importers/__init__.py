"""Importers: other tools' connector definitions turned into restsync specs."""
