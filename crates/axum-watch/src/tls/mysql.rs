//! MySQL and MariaDB over rustls for [`MySqlProbe`](crate::probes::MySqlProbe):
//! the MySQL client's `ssl-mode`, `ssl-ca`, `ssl-cert` and `ssl-key` read
//! from the URL (also spelled with `_`), mapped onto mysql_async's TLS
//! options together with the crate's [`TlsOptions`].
//!
//! | `ssl-mode` | TLS | certificate check |
//! | --- | --- | --- |
//! | `DISABLED` | never | — |
//! | `PREFERRED` | when the server offers it | none |
//! | `REQUIRED` | always | none, or as `VERIFY_IDENTITY` when `ssl-ca` or root certificates are given |
//! | `VERIFY_CA`, `VERIFY_IDENTITY` | always | the chain and the host name (the driver cannot skip the name alone) |
//!
//! Without `ssl-mode`, mysql_async's own `require_ssl=true` (with
//! `verify_ca=false` to skip checks) still works; with neither, no TLS.

use std::path::PathBuf;

use mysql_async::{ClientIdentity, Opts, OptsBuilder, SslOpts};

use super::TlsOptions;

const KEYS: [&str; 9] = [
    "ssl-mode", "ssl_mode", "sslmode", "ssl-ca", "ssl_ca", "ssl-cert", "ssl_cert", "ssl-key", "ssl_key",
];

/// The MySQL client's `--ssl-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SslMode {
    Disabled,
    Preferred,
    Required,
    VerifyIdentity,
    /// Options built in code: their `SslOpts` as they are.
    Untouched,
}

/// Why a URL could not be used.
pub(crate) type MySqlUrlError = super::UrlError<mysql_async::UrlError>;

/// The TLS half of a MySQL connection.
#[derive(Clone, Debug)]
pub(crate) struct MySqlTls {
    mode: SslMode,
    options: TlsOptions,
}

/// Parses a `mysql://` URL, taking the TLS keys out before mysql_async
/// reads the rest.
pub(crate) fn parse(url: &str) -> Result<(Opts, MySqlTls), MySqlUrlError> {
    let (rest, keys) = super::take_query_params(url, &KEYS);
    let opts = Opts::from_url(&rest).map_err(MySqlUrlError::Driver)?;
    let mut mode = None;
    let (mut ca, mut cert, mut key) = (None, None, None);
    for (name, value) in keys {
        match name.replace('_', "-").as_str() {
            "ssl-mode" | "sslmode" => {
                mode = Some(match value.to_ascii_uppercase().replace('-', "_").as_str() {
                    "DISABLED" | "DISABLE" => SslMode::Disabled,
                    "PREFERRED" | "PREFER" => SslMode::Preferred,
                    "REQUIRED" | "REQUIRE" => SslMode::Required,
                    "VERIFY_CA" | "VERIFY_IDENTITY" | "VERIFY_FULL" => SslMode::VerifyIdentity,
                    _ => {
                        return Err(MySqlUrlError::Tls(format!(
                            "invalid value {value:?} for `ssl-mode`: use DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY"
                        )));
                    }
                });
            }
            "ssl-ca" => ca = Some(PathBuf::from(value)),
            "ssl-cert" => cert = Some(PathBuf::from(value)),
            _ => key = Some(PathBuf::from(value)),
        }
    }
    let mut options = TlsOptions::new();
    if let Some(ca) = ca {
        // As the MySQL client: the file's roots only.
        options = options
            .root_certificate_file(&ca)
            .map_err(|e| MySqlUrlError::Tls(format!("ssl-ca: {e}")))?
            .system_roots(false);
    }
    match (cert, key) {
        (Some(cert), Some(key)) => {
            let read = |path: &PathBuf, option: &str| {
                std::fs::read(path)
                    .map_err(|e| MySqlUrlError::Tls(format!("cannot read {option} {}: {e}", path.display())))
            };
            options = options
                .client_identity_pem(read(&cert, "ssl-cert")?, read(&key, "ssl-key")?)
                .map_err(|e| MySqlUrlError::Tls(format!("ssl-cert/ssl-key: {e}")))?;
        }
        (None, None) => {}
        _ => {
            return Err(MySqlUrlError::Tls(
                "ssl-cert and ssl-key go together: give both or neither".to_owned(),
            ));
        }
    }
    let mode = match (mode, opts.ssl_opts()) {
        (Some(mode), _) => mode,
        // mysql_async's own `require_ssl=true`, which verifies unless
        // `verify_ca=false`.
        (None, Some(driver)) => {
            if driver.accept_invalid_certs() {
                options = options.danger_accept_invalid_certs(true);
            }
            SslMode::VerifyIdentity
        }
        (None, None) => SslMode::Disabled,
    };
    Ok((opts, MySqlTls { mode, options }))
}

/// The TLS half for options parsed elsewhere: their own TLS settings
/// stand, and `tls_options` only adds whom to trust when they ask for TLS.
pub(crate) fn untouched() -> MySqlTls {
    MySqlTls {
        mode: SslMode::Untouched,
        options: TlsOptions::new(),
    }
}

impl MySqlTls {
    /// The name the certificate is checked against, when overridden.
    pub(crate) fn server_name(&self) -> Option<String> {
        self.options.server_name_override().map(str::to_owned)
    }

    /// Replaces what `ssl-ca`, `ssl-cert` and `ssl-key` said.
    pub(crate) fn set_options(&mut self, options: TlsOptions) {
        self.options = options;
    }

    /// `opts` for the first try, and for `PREFERRED` the plain-text
    /// options to fall back on when the server has no TLS.
    pub(crate) fn apply(&self, opts: &Opts) -> (Opts, Option<Opts>) {
        let plain = Opts::from(OptsBuilder::from_opts(opts.clone()).ssl_opts(None::<SslOpts>));
        let verify = match self.mode {
            SslMode::Untouched => {
                if opts.ssl_opts().is_some() {
                    super::install_default_provider();
                }
                return (opts.clone(), None);
            }
            SslMode::Disabled => return (plain, None),
            SslMode::Preferred => false,
            SslMode::Required => !self.options.root_certificates().is_empty(),
            SslMode::VerifyIdentity => true,
        };
        super::install_default_provider();
        let system: &[_] = if self.options.trusts_system_roots() {
            super::system_roots()
        } else {
            &[]
        };
        let roots = self
            .options
            .root_certificates()
            .iter()
            .chain(system)
            .map(|der| der.as_ref().to_vec().into())
            .collect();
        let identity = self
            .options
            .identity()
            .map(|id| ClientIdentity::new(id.chain_pem.clone().into(), id.key_pem.clone().into()));
        let ssl = SslOpts::default()
            .with_root_certs(roots)
            .with_disable_built_in_roots(true)
            .with_client_identity(identity)
            .with_danger_tls_hostname_override(self.options.server_name_override().map(str::to_owned))
            .with_danger_accept_invalid_certs(!verify || self.options.accepts_invalid_certs());
        let secured = Opts::from(OptsBuilder::from_opts(opts.clone()).ssl_opts(ssl));
        let fallback = (self.mode == SslMode::Preferred).then_some(plain);
        (secured, fallback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_modes_come_out_of_the_url() {
        let (opts, tls) = parse("mysql://u:pw@db:3306/x?ssl-mode=VERIFY_IDENTITY&prefer_socket=false").unwrap();
        assert_eq!(tls.mode, SslMode::VerifyIdentity);
        assert!(!opts.prefer_socket());
        let (secured, fallback) = tls.apply(&opts);
        let ssl = secured.ssl_opts().unwrap();
        assert!(!ssl.accept_invalid_certs() && ssl.disable_built_in_roots() && fallback.is_none());
        let (opts, tls) = parse("mysql://db/x?ssl_mode=preferred").unwrap();
        let (secured, fallback) = tls.apply(&opts);
        assert!(secured.ssl_opts().unwrap().accept_invalid_certs());
        assert!(fallback.unwrap().ssl_opts().is_none());
        let (opts, tls) = parse("mysql://db/x").unwrap();
        assert_eq!(tls.mode, SslMode::Disabled);
        assert!(tls.apply(&opts).0.ssl_opts().is_none());
        let (_, tls) = parse("mysql://db/x?require_ssl=true&verify_ca=false").unwrap();
        assert_eq!(tls.mode, SslMode::VerifyIdentity);
        assert!(tls.options.accepts_invalid_certs());
    }

    #[test]
    fn bad_values_are_clear() {
        let Err(MySqlUrlError::Tls(e)) = parse("mysql://db/x?ssl-mode=sometimes") else {
            panic!("accepted");
        };
        assert!(e.starts_with("invalid value \"sometimes\" for `ssl-mode`"), "{e}");
        let Err(MySqlUrlError::Tls(e)) = parse("mysql://db/x?ssl-ca=/nonexistent/ca.pem") else {
            panic!("accepted");
        };
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
