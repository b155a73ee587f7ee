"""How the tools reach a deployment: settings from the environment, the HTTP client of the service, the object stores, deadlines."""
