"""Engines run the tables' SQL SELECTs. Asset code talks to an engine only through `select_into`."""
