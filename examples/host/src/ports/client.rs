//! The JSON-over-HTTP call every port client makes: `POST <base>/<method>` with the
//! method's arguments as a JSON object, the answer a JSON document.

use std::time::Duration;

use mmm_engine::PortError;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::runtime::Handle;

/// The largest answer a port may send (a larger one is a dependency misbehaving).
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// One port service.
#[derive(Clone)]
pub struct HttpPort {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    handle: Handle,
    timeout: Duration,
}

impl std::fmt::Debug for HttpPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPort")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpPort {
    /// A client of the service at `url` (named by `flag` in errors), each request bounded
    /// by `timeout`, driven on `handle`.
    ///
    /// # Errors
    /// A message naming `flag` when `url` is not an `http://` or `https://` URL.
    pub fn new(
        flag: &str,
        url: &str,
        timeout: Duration,
        token: Option<String>,
        handle: Handle,
    ) -> Result<HttpPort, String> {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| format!("{flag} `{url}` is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(format!("{flag} `{url}` is not an http:// or https:// URL"));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| format!("{flag}: cannot build an HTTP client: {e}"))?;
        Ok(HttpPort {
            client,
            base: url.trim_end_matches('/').to_owned(),
            token,
            handle,
            timeout,
        })
    }

    /// `POST <base>/<method>` with `body`; the answer parsed as `T`.
    ///
    /// 2xx with a valid body is the answer; 408, 429, 5xx, a time-out, a refused
    /// connection or a body that is not `T` mean the service is down
    /// ([`PortError::Unavailable`], counted by the breaker); any other 4xx is a business
    /// answer ([`PortError::Rejected`]: an unknown actor, say), which is not.
    ///
    /// # Errors
    /// As above.
    pub fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: &str,
        body: &B,
    ) -> Result<T, PortError> {
        let url = format!("{}/{method}", self.base);
        let mut request = self.client.post(&url).json(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let fut = async move {
            let mut response = request.send().await.map_err(|e| describe(&e))?;
            let status = response.status();
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
                if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(PortError::Unavailable(format!(
                        "the answer is larger than {MAX_ANSWER_BYTES} bytes"
                    )));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok((status, bytes))
        };
        let (status, bytes) = self
            .handle
            .block_on(async { tokio::time::timeout(self.timeout, fut).await })
            .map_err(|_| {
                PortError::Unavailable(format!(
                    "{url}: no answer within {} ms",
                    self.timeout.as_millis()
                ))
            })?
            .map_err(|e| match e {
                PortError::Unavailable(m) => PortError::Unavailable(format!("{url}: {m}")),
                other => other,
            })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                PortError::Unavailable(format!(
                    "{url} answered {status} with an unusable body: {e}"
                ))
            });
        }
        let excerpt: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
        if status.is_client_error()
            && status != StatusCode::REQUEST_TIMEOUT
            && status != StatusCode::TOO_MANY_REQUESTS
        {
            Err(PortError::Rejected(format!(
                "{url} answered {status}: {excerpt}"
            )))
        } else {
            Err(PortError::Unavailable(format!(
                "{url} answered {status}: {excerpt}"
            )))
        }
    }
}

/// A transport error in words, without the URL (added by the caller).
fn describe(e: &reqwest::Error) -> PortError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    PortError::Unavailable(if detail.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {detail}")
    })
}
