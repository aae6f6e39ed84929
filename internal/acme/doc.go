// Package acme gives the gateway HTTPS with certificates from an ACME CA
// (Let's Encrypt by default), through certmagic.
//
// Certificates are obtained on demand, at the first TLS handshake for a
// name, and only for names Config.Allow accepts (the gateway allows its own
// host names, the origins of sites that exist and custom domains attached
// to a site), so a stranger cannot make the gateway ask the CA for
// arbitrary names. They are renewed in the background. Certificates, the
// ACME account key and the locks that keep two gateways from obtaining the
// same name at once live in a JetStream KV bucket (KVStorage), so every
// gateway of a cluster on one bus shares them: a cluster obtains each
// certificate once.
//
// Manager.TLSConfig serves the certificates (and answers TLS-ALPN-01
// challenges); Manager.HTTPHandler answers HTTP-01 challenges on the
// plain-HTTP listener before passing other requests on.
//
// Errors: certificate problems surface in the TLS handshake (a name that is
// not allowed gets no certificate) and in the log; New fails on a bad
// Config.
package acme
