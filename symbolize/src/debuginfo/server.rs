//! The debuginfod client: `DEBUGINFOD_URLS` (space-separated), the cache in
//! `DEBUGINFOD_CACHE_PATH` (default `~/.cache/debuginfod_client`, shared with
//! elfutils' tools), each request bounded in time and size.
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use debuginfod::{BuildId, CachingClient, Client, HttpClient, HttpClientError, Readable};

/// Debug files larger than this are refused (libLLVM's is about 1 GiB).
const MAX_DEBUG_FILE_BYTES: u64 = 2 << 30;

/// Whether and how to ask debuginfod servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebuginfodSettings {
    pub enabled: bool,
    /// For each request, connection to last byte.
    pub timeout: Duration,
}

impl Default for DebuginfodSettings {
    fn default() -> Self {
        Self { enabled: true, timeout: Duration::from_secs(10) }
    }
}

pub(super) struct Debuginfod {
    client: CachingClient,
    pub timeout: Duration,
}

impl std::fmt::Debug for Debuginfod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Debuginfod").finish_non_exhaustive()
    }
}

impl Debuginfod {
    /// `None` when disabled or no server is configured (or the cache
    /// directory cannot be made).
    pub fn new(settings: &DebuginfodSettings) -> Option<Self> {
        if !settings.enabled {
            return None;
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(settings.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let client = Client::builder().http_client(Transport(agent)).build_from_env().ok()??;
        let client = CachingClient::from_env(client).ok()?;
        Some(Self { client, timeout: settings.timeout })
    }

    /// The cached path of the debug file for `build_id`, fetched if needed.
    pub fn fetch(&self, build_id: &[u8]) -> Option<PathBuf> {
        self.client.fetch_debug_info(&BuildId::raw(build_id)).ok().flatten()
    }
}

/// HTTP GETs through ureq for the debuginfod crate.
struct Transport(ureq::Agent);

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transport")
    }
}

impl HttpClient for Transport {
    fn get(&self, url: &str) -> Result<Box<dyn Readable>, HttpClientError> {
        let response = self.0.get(url).call().map_err(|e| HttpClientError::Other(Box::new(e)))?;
        if !response.status().is_success() {
            return Err(HttpClientError::StatusCode(response.status()));
        }
        let reader = response.into_body().into_with_config().limit(MAX_DEBUG_FILE_BYTES).reader();
        Ok(Box::new(DebugReader(reader)))
    }
}

/// ureq's body reader, with the Debug the debuginfod crate asks for.
struct DebugReader<R>(R);

impl<R> std::fmt::Debug for DebugReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DebugReader")
    }
}

impl<R: Read> Read for DebugReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}
