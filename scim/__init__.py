"""SCIM 2.0 provisioning (RFC 7643/7644): an identity provider creates, updates,
deactivates and deletes an organization's members and groups with a bearer token."""
