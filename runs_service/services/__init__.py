"""Service layer: plain typed functions used by the API, CLI and exports."""
