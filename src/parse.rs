//! The small parsers that configuration and the stores share: booleans, store URLs and
//! their query parameters, SQL table names, and URLs shown without their password.

use std::collections::BTreeMap;
#[cfg(pooled_store)]
use std::time::Duration;

use crate::error::{Error, Result};

/// Parses the boolean spellings Flask settings and URLs use.
pub(crate) fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::config(key, format!("{value:?} is not a boolean"))),
    }
}

/// Parses a store URL. A comma-separated host list in the authority
/// (`redis+cluster://:pw@h1:7001,h2:7002/`), which URLs do not allow, is accepted: the URL
/// is parsed with the first host, and the whole list waits in the parameters for the
/// backend that takes it ([`QueryParams::take_hosts`]).
pub(crate) fn parse_store_url(text: &str) -> Result<(url::Url, QueryParams)> {
    let not_a_url = |e: url::ParseError| Error::config("store URL", format!("not a URL: {e}"));
    let (url, hosts) = match host_list(text) {
        Some((start, end)) => {
            let hosts: Vec<String> = text[start..end].split(',').map(str::to_owned).collect();
            if hosts.iter().any(String::is_empty) {
                return Err(Error::config("store URL", "empty host in the host list"));
            }
            let first = format!("{}{}{}", &text[..start], hosts[0], &text[end..]);
            (url::Url::parse(&first).map_err(not_a_url)?, hosts)
        }
        None => (url::Url::parse(text).map_err(not_a_url)?, Vec::new()),
    };
    let mut params = QueryParams::from_url(&url)?;
    params.hosts = hosts;
    Ok((url, params))
}

/// The byte range of the hosts in `scheme://[userinfo@]hosts[/path][?query]` when they are
/// a comma-separated list.
fn host_list(text: &str) -> Option<(usize, usize)> {
    let start = text.find("://")? + 3;
    let end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| start + i);
    let start = text[start..end].rfind('@').map_or(start, |i| start + i + 1);
    text[start..end].contains(',').then_some((start, end))
}

/// A store URL's query parameters, taken one by one by the parts that understand them.
#[derive(Debug, Default)]
pub(crate) struct QueryParams {
    values: BTreeMap<String, String>,
    /// Every host of a comma-separated host list (empty for a single host).
    hosts: Vec<String>,
}

impl QueryParams {
    pub(crate) fn from_url(url: &url::Url) -> Result<QueryParams> {
        let mut values = BTreeMap::new();
        for (name, value) in url.query_pairs() {
            if values.insert(name.to_string(), value.to_string()).is_some() {
                return Err(Error::config(name, "given more than once in the store URL"));
            }
        }
        Ok(QueryParams {
            values,
            hosts: Vec::new(),
        })
    }

    /// Removes and returns a parameter.
    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    /// Removes and returns the hosts of a comma-separated host list (`host:port` as written),
    /// or an empty list when the URL names one host.
    #[cfg(any(feature = "redis", feature = "memcached"))]
    pub(crate) fn take_hosts(&mut self) -> Vec<String> {
        std::mem::take(&mut self.hosts)
    }

    /// Removes and parses a positive number of seconds (`2`, `0.25`).
    #[cfg(pooled_store)]
    pub(crate) fn take_seconds(&mut self, name: &str) -> Result<Option<Duration>> {
        let Some(seconds) = self.take_parsed::<f64>(name)? else {
            return Ok(None);
        };
        match Duration::try_from_secs_f64(seconds) {
            Ok(duration) if !duration.is_zero() => Ok(Some(duration)),
            _ => Err(Error::config(
                name,
                format!("{seconds} is not a positive number of seconds"),
            )),
        }
    }

    /// Removes and parses the pool size, which must be at least 1, from `pool_size`.
    #[cfg(any(feature = "redis", feature = "memcached"))]
    pub(crate) fn take_pool_size(&mut self) -> Result<Option<u32>> {
        match self.take_parsed::<u32>("pool_size")? {
            Some(0) => Err(Error::config("pool_size", "must be at least 1")),
            size => Ok(size),
        }
    }

    /// Removes and parses a parameter.
    pub(crate) fn take_parsed<T: std::str::FromStr>(&mut self, name: &str) -> Result<Option<T>> {
        self.take(name)
            .map(|value| {
                value
                    .parse()
                    .map_err(|_| Error::config(name, format!("cannot parse {value:?}")))
            })
            .transpose()
    }

    /// Fails naming the first parameter nobody took, or a host list no backend took.
    pub(crate) fn finish(self) -> Result<()> {
        if !self.hosts.is_empty() {
            return Err(Error::config(
                "store URL",
                "this backend takes one host, not a comma-separated list",
            ));
        }
        match self.values.into_keys().next() {
            Some(name) => Err(Error::config(name, "unknown store URL parameter")),
            None => Ok(()),
        }
    }
}

#[cfg(sql_store)]
/// Checks that `table` is `[A-Za-z_][A-Za-z0-9_]{0,62}`, the only names spliced into SQL.
pub(crate) fn validate_table_name(table: &str) -> std::result::Result<(), String> {
    let mut bytes = table.bytes();
    let valid = table.len() <= 63
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{table:?} is not a table name: 1 to 63 characters of [A-Za-z0-9_], not starting \
             with a digit"
        ))
    }
}

#[cfg(any(feature = "postgres", feature = "mongodb", feature = "redis"))]
/// `url` with its password, if any, replaced by `***`, for logs and `Debug` output.
pub(crate) fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Cannot fail: the URL has a host, since it has a password.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> QueryParams {
        parse_store_url(&format!("redis://h/?{query}")).unwrap().1
    }

    #[test]
    fn booleans_in_flask_and_url_spellings() {
        for yes in ["1", "true", "True", "yes", "ON"] {
            assert!(parse_bool("k", yes).unwrap(), "{yes}");
        }
        for no in ["0", "false", "False", "no", "off"] {
            assert!(!parse_bool("k", no).unwrap(), "{no}");
        }
        assert!(parse_bool("k", "maybe").is_err());
    }

    #[cfg(pooled_store)]
    #[test]
    fn seconds_are_positive_decimals() {
        let mut p = params("a=2&b=0.25&c=0&d=-1&e=x&f=inf");
        assert_eq!(p.take_seconds("a").unwrap(), Some(Duration::from_secs(2)));
        assert_eq!(
            p.take_seconds("b").unwrap(),
            Some(Duration::from_millis(250))
        );
        for name in ["c", "d", "e", "f"] {
            match p.take_seconds(name) {
                Err(Error::Config { key, .. }) => assert_eq!(key, name),
                other => panic!("{name} accepted: {other:?}"),
            }
        }
        assert_eq!(p.take_seconds("absent").unwrap(), None);
    }

    #[cfg(any(feature = "redis", feature = "memcached"))]
    #[test]
    fn pool_size_is_at_least_one() {
        assert_eq!(params("pool_size=3").take_pool_size().unwrap(), Some(3));
        assert_eq!(params("").take_pool_size().unwrap(), None);
        assert!(params("pool_size=0").take_pool_size().is_err());
        assert!(params("pool_size=-2").take_pool_size().is_err());
    }

    #[test]
    fn parameters_left_over_are_errors() {
        let mut p = params("a=1&b=2");
        assert_eq!(p.take("a").as_deref(), Some("1"));
        match p.finish() {
            Err(Error::Config { key, .. }) => assert_eq!(key, "b"),
            other => panic!("b accepted: {other:?}"),
        }
        assert!(parse_store_url("redis://h/?a=1&a=2").is_err());
    }

    #[cfg(any(feature = "postgres", feature = "mongodb", feature = "redis"))]
    #[test]
    fn redacted_urls_hide_the_password() {
        assert_eq!(redacted("redis://u:pw@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redacted("redis://h:1/0"), "redis://h:1/0");
        assert_eq!(redacted("not a url"), "<unparsable URL>");
    }
}
