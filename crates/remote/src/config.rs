//! Where a remote dataset is, and how to reach it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use stokehold_store::{Error, RemoteKind, INDEX_FILE};

/// Whether `location` names object storage (`s3://…`).
pub fn is_remote(location: &str) -> bool {
    location.starts_with("s3://")
}

/// The `s3://` address `path` holds, if it is one (else a local path).
pub fn remote_url(path: &std::path::Path) -> Option<&str> {
    path.to_str().filter(|s| is_remote(s))
}

/// A dataset folder in a bucket: `s3://bucket/prefix/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The folder's key prefix, without leading or trailing `/` (empty: the bucket's root).
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://bucket/prefix/` (or `…/dataset.json`).
    pub fn parse(url: &str) -> Result<S3Location, Error> {
        let bad = |reason: &str| Error::Remote {
            location: url.to_owned(),
            reason: reason.to_owned(),
            kind: RemoteKind::Failed,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("not an s3:// address"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket: write s3://BUCKET/PREFIX/"));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = prefix
            .strip_suffix(INDEX_FILE)
            .unwrap_or(prefix)
            .trim_end_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") {
            return Err(bad("the prefix has a '.' or '..' part"));
        }
        Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The key of `name` (relative to the folder).
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// `s3://bucket/prefix/name`.
    pub fn url(&self, name: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(name))
    }

    /// The folder as a listing prefix (`None`: the whole bucket).
    pub fn prefix_path(&self) -> Option<ObjectPath> {
        (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()))
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.url(""))
    }
}

/// How a remote dataset is read: the client's settings
/// (`storage_options`), request planning, retries and the cache.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// S3 settings given by the caller (endpoint, region, credentials…),
    /// named as `object_store` or the AWS variables name them
    /// (`endpoint_url`, `region`, `aws_access_key_id`, …); they win over
    /// the environment and the AWS files.
    pub storage: Vec<(String, String)>,
    /// Range requests in flight at once per batch (default 16).
    pub max_in_flight: usize,
    /// Samples of a shard at most this many bytes apart are read in one
    /// request, the bytes between included (default 0: adjacent only).
    pub max_gap: u64,
    /// A coalesced request is at most this long (default 16 MiB).
    pub max_request_bytes: u64,
    /// Retries of a failed or short response (default 4), with a backoff
    /// doubling from [`RemoteOptions::backoff`] (default 100 ms).
    pub retries: u32,
    /// The first retry's delay.
    pub backoff: Duration,
    /// One request's time limit (default 30 s).
    pub timeout: Duration,
    /// Files larger than this are uploaded in parts of this size (default 64 MiB).
    pub multipart_bytes: u64,
    /// A local block cache (for several epochs), shared safely by the
    /// processes of one machine.
    pub cache_dir: Option<PathBuf>,
    /// Most bytes the cache keeps (0: no limit); the blocks used longest
    /// ago are removed first.
    pub cache_limit: u64,
    /// Bytes of one cache block (default 4 MiB).
    pub cache_block: u64,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            storage: Vec::new(),
            max_in_flight: 16,
            max_gap: 0,
            max_request_bytes: 16 << 20,
            retries: 4,
            backoff: Duration::from_millis(100),
            timeout: Duration::from_secs(30),
            multipart_bytes: 64 << 20,
            cache_dir: None,
            cache_limit: 0,
            cache_block: 4 << 20,
        }
    }
}

impl RemoteOptions {
    /// Sets one option by name: this crate's own (`max_in_flight`,
    /// `max_gap`, `max_request_bytes`, `retries`, `backoff`, `timeout`,
    /// `multipart_bytes`, seconds for durations) or an S3 setting (checked
    /// when the client is built).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let bad = |what: &str| Error::Remote {
            location: format!("storage_options[{key:?}]"),
            reason: format!("{value:?} is not {what}"),
            kind: RemoteKind::Setting,
        };
        let int = || {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| bad("a whole number"))
        };
        let secs = || {
            value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e6)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| bad("a number of seconds"))
        };
        match key {
            "max_in_flight" => {
                self.max_in_flight = int()?.clamp(1, 1024) as usize;
            }
            "max_gap" => self.max_gap = int()?,
            "max_request_bytes" => self.max_request_bytes = int()?.max(1),
            "retries" => self.retries = int()?.min(100) as u32,
            "backoff" => self.backoff = secs()?,
            "timeout" => self.timeout = secs()?,
            "multipart_bytes" => self.multipart_bytes = int()?,
            _ => self.storage.push((key.to_owned(), value.to_owned())),
        }
        Ok(())
    }

    /// The S3 client for `location`: settings from the AWS shared files,
    /// then the environment, then [`RemoteOptions::storage`] (each
    /// overriding the one before). An `http://` endpoint is allowed (a
    /// local server); retries are this crate's, not the client's.
    pub(crate) fn build_store(&self, location: &S3Location) -> Result<Arc<dyn ObjectStore>, Error> {
        let mut builder = AmazonS3Builder::new();
        let mut endpoint: Option<String> = None;
        let mut region = false;
        let mut apply = |builder: AmazonS3Builder, key: AmazonS3ConfigKey, value: String| {
            match key {
                AmazonS3ConfigKey::Endpoint => endpoint = Some(value.clone()),
                AmazonS3ConfigKey::Region | AmazonS3ConfigKey::DefaultRegion => region = true,
                _ => {}
            }
            builder.with_config(key, value)
        };
        for (key, value) in aws_files() {
            if let Ok(k) = key.parse() {
                builder = apply(builder, k, value);
            }
        }
        for (key, value) in std::env::vars() {
            if key.starts_with("AWS_") {
                if let Ok(k) = key.to_ascii_lowercase().parse() {
                    builder = apply(builder, k, value);
                }
            }
        }
        for (key, value) in &self.storage {
            let k: AmazonS3ConfigKey = key.parse().map_err(|_| Error::Remote {
                location: format!("storage_options[{key:?}]"),
                reason: "not an S3 setting (endpoint_url, region, aws_access_key_id, \
                    aws_secret_access_key, aws_session_token, …) nor one of max_in_flight, \
                    max_gap, max_request_bytes, retries, backoff, timeout, multipart_bytes"
                    .into(),
                kind: RemoteKind::Setting,
            })?;
            builder = apply(builder, k, value.clone());
        }
        if !region {
            builder = builder.with_region("us-east-1");
        }
        // Set after the client options, which would reset it.
        let http = endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let store = builder
            .with_bucket_name(&location.bucket)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 0,
                retry_timeout: self.timeout,
            })
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(self.timeout)
                    .with_connect_timeout(self.timeout.min(Duration::from_secs(10))),
            )
            .with_allow_http(http)
            .build()
            .map_err(|e| Error::Remote {
                location: location.to_string(),
                reason: format!("cannot set up the S3 client: {}", crate::one_line(&e)),
                kind: RemoteKind::Failed,
            })?;
        Ok(Arc::new(store))
    }
}

/// Settings from the AWS shared config and credentials files for profile
/// `AWS_PROFILE` (or `default`), as `object_store` keys; none when the
/// files are absent.
fn aws_files() -> Vec<(String, String)> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let mut out = Vec::new();
    // The config file names sections `[profile NAME]` (and `[default]`).
    if let Some(text) =
        file("AWS_CONFIG_FILE", "config").and_then(|p| std::fs::read_to_string(p).ok())
    {
        let wanted = if profile == "default" {
            "default".to_owned()
        } else {
            format!("profile {profile}")
        };
        out.extend(ini_section(&text, &wanted));
    }
    if let Some(text) = file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
        .and_then(|p| std::fs::read_to_string(p).ok())
    {
        out.extend(ini_section(&text, &profile));
    }
    out.into_iter()
        .filter_map(|(k, v)| {
            let key = match k.as_str() {
                "aws_access_key_id" | "aws_secret_access_key" | "aws_session_token" => k,
                "region" => "aws_region".into(),
                "endpoint_url" => "aws_endpoint".into(),
                _ => return None,
            };
            Some((key, v))
        })
        .collect()
}

/// `key = value` pairs of section `[name]` of an INI text.
pub(crate) fn ini_section(text: &str, name: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == name;
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
    }
    out
}
