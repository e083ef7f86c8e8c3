//! Logs and traces of the `tether` process: log lines on stderr as text or JSON (one object
//! per line, with the fields of the spans they happen in), filtered by `RUST_LOG` (default
//! `info`), and, with `--otlp-endpoint` (cargo feature `otlp`, on by default), the same spans
//! exported to an OpenTelemetry collector over OTLP/HTTP (protobuf).
//!
//! Hook tokens never appear in full: the spans and events that name one carry
//! `tether_core::redact_token`'s prefix only.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields`, `span`, `spans`.
    Json,
}

/// What [`init`] sets up.
#[derive(Clone, Debug, Default)]
pub struct TelemetryOptions {
    /// The log line format.
    pub log_format: LogFormat,
    /// The OTLP/HTTP collector to send spans to (base URL, e.g. `http://127.0.0.1:4318`, or
    /// the full `.../v1/traces` URL); `None`: no export.
    pub otlp_endpoint: Option<String>,
}

/// Keeps the exporter running; dropping it sends the spans still buffered (call it outside
/// the async runtime: the flush blocks).
#[derive(Debug, Default)]
pub struct Telemetry {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("tether: could not send the last spans to the OTLP collector: {e}");
            }
        }
    }
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Install the global subscriber. Errors (a bad endpoint, a build without `otlp`) are one line
/// for the user.
pub fn init(options: &TelemetryOptions) -> Result<Telemetry, String> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt_layer = match options.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    };
    #[allow(unused_mut)]
    let mut layers: Vec<BoxedLayer> = vec![fmt_layer];
    #[allow(unused_mut)]
    let mut telemetry = Telemetry::default();
    if let Some(endpoint) = &options.otlp_endpoint {
        #[cfg(feature = "otlp")]
        {
            let (layer, provider) = otlp::layer(endpoint)?;
            layers.push(layer);
            telemetry.provider = Some(provider);
        }
        #[cfg(not(feature = "otlp"))]
        {
            return Err(format!(
                "--otlp-endpoint {endpoint}: this tether was built without the `otlp` feature"
            ));
        }
    }
    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))?;
    Ok(telemetry)
}

/// The traces URL for `--otlp-endpoint`: a base URL gets `/v1/traces` appended (as with
/// `OTEL_EXPORTER_OTLP_ENDPOINT`); a URL already ending in it is kept.
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
pub fn traces_url(endpoint: &str) -> Result<String, String> {
    let lower = endpoint.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(format!(
            "--otlp-endpoint must start with http:// or https://, not {endpoint:?}"
        ));
    }
    let trimmed = endpoint.trim_end_matches('/');
    if trimmed.ends_with("/v1/traces") {
        Ok(trimmed.to_owned())
    } else {
        Ok(format!("{trimmed}/v1/traces"))
    }
}

#[cfg(feature = "otlp")]
mod otlp {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use opentelemetry_sdk::Resource;
    use tracing_subscriber::Layer;

    use super::{traces_url, BoxedLayer};

    /// A `tracing` layer exporting spans to `endpoint` in batches (a background thread of the
    /// SDK sends them; `OTEL_BSP_SCHEDULE_DELAY` etc. tune it).
    pub(super) fn layer(endpoint: &str) -> Result<(BoxedLayer, SdkTracerProvider), String> {
        let url = traces_url(endpoint)?;
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url.clone())
            .build()
            .map_err(|e| format!("cannot set up the OTLP exporter for {url}: {e}"))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name("tether").build())
            .build();
        let tracer = provider.tracer("tether");
        let layer = tracing_opentelemetry::layer().with_tracer(tracer).boxed();
        Ok((layer, provider))
    }
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn otlp_endpoints() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://c:4318/").unwrap(),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://c/otlp/v1/traces").unwrap(),
            "https://c/otlp/v1/traces"
        );
        assert!(traces_url("c:4318")
            .unwrap_err()
            .contains("--otlp-endpoint"));
    }
}
