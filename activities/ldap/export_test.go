package ldap

// StoreSSHA exposes the client-side hash fallback: slapd always implements
// Password Modify, so the integration test calls the fallback directly to
// prove the server accepts what it stores.
var StoreSSHA = storeSSHA
