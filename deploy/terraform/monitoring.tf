# A dashboard and six alert policies (docs/OPERATIONS.md, "Dashboards and alerts").
#
# Cloud Run's own metrics (run.googleapis.com/...) give latency, request count, error share,
# CPU and memory with no agent. Orchestra's metrics (tokens, cost, time to first token,
# fallbacks, cache, upstream latency) are Prometheus metrics on /metrics; the Managed Service
# for Prometheus sidecar (var.prometheus_sidecar, on by default) ships them to Cloud
# Monitoring as prometheus.googleapis.com/<name>/<kind>, where the dashboard and two alert
# policies read them with PromQL. Without the sidecar those panels stay empty, the two
# policies are not created, and everything else works.

locals {
  run_filter = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${google_cloud_run_v2_service.orchestra.name}\""
  # Series from the sidecar carry the service name as the `namespace` label.
  prom_selector = "namespace=\"${local.name}\""

  notification_channels = concat(
    var.notification_channels,
    [for c in google_monitoring_notification_channel.email : c.name],
  )

  dashboard_widgets = [
    {
      title = "Request latency p95 (ms)"
      xyChart = {
        dataSets = [{
          plotType           = "LINE"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "metric.type=\"run.googleapis.com/request_latencies\" AND ${local.run_filter}"
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_PERCENTILE_95"
                crossSeriesReducer = "REDUCE_MAX"
                groupByFields      = ["resource.label.\"service_name\""]
              }
            }
          }
        }]
        thresholds = [{ value = var.alert_latency_p95_ms, color = "RED", direction = "ABOVE" }]
        yAxis      = { label = "ms", scale = "LINEAR" }
      }
    },
    {
      title = "Request count (per second, by response class)"
      xyChart = {
        dataSets = [{
          plotType           = "STACKED_AREA"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run_filter}"
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_RATE"
                crossSeriesReducer = "REDUCE_SUM"
                groupByFields      = ["metric.label.\"response_code_class\""]
              }
            }
          }
        }]
        yAxis = { label = "requests/s", scale = "LINEAR" }
      }
    },
    {
      title = "Error rate (5xx share)"
      xyChart = {
        dataSets = [{
          plotType           = "LINE"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            timeSeriesFilterRatio = {
              numerator = {
                filter = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run_filter} AND metric.labels.response_code_class=\"5xx\""
                aggregation = {
                  alignmentPeriod    = "60s"
                  perSeriesAligner   = "ALIGN_RATE"
                  crossSeriesReducer = "REDUCE_SUM"
                  groupByFields      = ["resource.label.\"service_name\""]
                }
              }
              denominator = {
                filter = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run_filter}"
                aggregation = {
                  alignmentPeriod    = "60s"
                  perSeriesAligner   = "ALIGN_RATE"
                  crossSeriesReducer = "REDUCE_SUM"
                  groupByFields      = ["resource.label.\"service_name\""]
                }
              }
            }
          }
        }]
        thresholds = [{ value = var.alert_error_rate, color = "RED", direction = "ABOVE" }]
        yAxis      = { label = "share", scale = "LINEAR" }
      }
    },
    {
      title = "Instances"
      xyChart = {
        dataSets = [{
          plotType           = "STACKED_AREA"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "metric.type=\"run.googleapis.com/container/instance_count\" AND ${local.run_filter}"
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_MAX"
                crossSeriesReducer = "REDUCE_SUM"
                groupByFields      = ["metric.label.\"state\""]
              }
            }
          }
        }]
        yAxis = { label = "instances", scale = "LINEAR" }
      }
    },
    {
      title = "CPU utilisation (p95 across instances)"
      xyChart = {
        dataSets = [{
          plotType           = "LINE"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "metric.type=\"run.googleapis.com/container/cpu/utilizations\" AND ${local.run_filter}"
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_PERCENTILE_95"
                crossSeriesReducer = "REDUCE_MAX"
                groupByFields      = ["resource.label.\"service_name\""]
              }
            }
          }
        }]
        thresholds = [{ value = var.alert_cpu_utilization, color = "RED", direction = "ABOVE" }]
        yAxis      = { label = "utilisation", scale = "LINEAR" }
      }
    },
    {
      title = "Memory utilisation (p95 across instances)"
      xyChart = {
        dataSets = [{
          plotType           = "LINE"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "metric.type=\"run.googleapis.com/container/memory/utilizations\" AND ${local.run_filter}"
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_PERCENTILE_95"
                crossSeriesReducer = "REDUCE_MAX"
                groupByFields      = ["resource.label.\"service_name\""]
              }
            }
          }
        }]
        thresholds = [{ value = var.alert_memory_utilization, color = "RED", direction = "ABOVE" }]
        yAxis      = { label = "utilisation", scale = "LINEAR" }
      }
    },
    {
      title = "Upstream latency p95 by provider (s)"
      xyChart = {
        dataSets = [{
          plotType           = "LINE"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            prometheusQuery = "histogram_quantile(0.95, sum by (le, provider) (rate(orchestra_upstream_duration_seconds_bucket{${local.prom_selector}}[5m])))"
            unitOverride    = "s"
          }
        }]
        yAxis = { label = "seconds", scale = "LINEAR" }
      }
    },
    {
      title = "Upstream requests by outcome (per second)"
      xyChart = {
        dataSets = [{
          plotType           = "STACKED_AREA"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            prometheusQuery = "sum by (provider, outcome) (rate(orchestra_upstream_requests_total{${local.prom_selector}}[5m]))"
          }
        }]
        yAxis = { label = "requests/s", scale = "LINEAR" }
      }
    },
    {
      title = "Tokens per minute by model"
      xyChart = {
        dataSets = [{
          plotType           = "STACKED_AREA"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            prometheusQuery = "60 * sum by (model) (rate(orchestra_tokens_total{${local.prom_selector}}[5m]))"
          }
        }]
        yAxis = { label = "tokens/min", scale = "LINEAR" }
      }
    },
    {
      title = "Cost per hour by model (USD)"
      xyChart = {
        dataSets = [{
          plotType           = "STACKED_AREA"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            prometheusQuery = "3600 * sum by (model) (rate(orchestra_cost_usd_total{${local.prom_selector}}[5m]))"
          }
        }]
        thresholds = [{ value = var.alert_spend_usd_per_hour, color = "RED", direction = "ABOVE" }]
        yAxis      = { label = "USD/hour", scale = "LINEAR" }
      }
    },
    {
      title = "Time to first token p95 by model (s)"
      xyChart = {
        dataSets = [{
          plotType           = "LINE"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            prometheusQuery = "histogram_quantile(0.95, sum by (le, model) (rate(orchestra_time_to_first_token_seconds_bucket{${local.prom_selector}}[5m])))"
            unitOverride    = "s"
          }
        }]
        yAxis = { label = "seconds", scale = "LINEAR" }
      }
    },
    {
      title = "Fallback and retry rate (share of upstream attempts)"
      xyChart = {
        dataSets = [
          {
            plotType           = "LINE"
            minAlignmentPeriod = "60s"
            legendTemplate     = "fallbacks"
            timeSeriesQuery = {
              prometheusQuery = "sum(rate(orchestra_fallbacks_total{${local.prom_selector}}[5m])) / sum(rate(orchestra_upstream_requests_total{${local.prom_selector}}[5m]))"
            }
          },
          {
            plotType           = "LINE"
            minAlignmentPeriod = "60s"
            legendTemplate     = "retries"
            timeSeriesQuery = {
              prometheusQuery = "sum(rate(orchestra_retries_total{${local.prom_selector}}[5m])) / sum(rate(orchestra_upstream_requests_total{${local.prom_selector}}[5m]))"
            }
          },
        ]
        thresholds = [{ value = var.alert_upstream_error_share, color = "RED", direction = "ABOVE" }]
        yAxis      = { label = "share", scale = "LINEAR" }
      }
    },
    {
      title = "Cache hit ratio"
      xyChart = {
        dataSets = [{
          plotType           = "LINE"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            prometheusQuery = "sum(rate(orchestra_cache_requests_total{${local.prom_selector}, result=\"hit\"}[5m])) / sum(rate(orchestra_cache_requests_total{${local.prom_selector}}[5m]))"
          }
        }]
        yAxis = { label = "hits / lookups", scale = "LINEAR" }
      }
    },
    {
      title = "Requests in flight per instance (max) against concurrency"
      xyChart = {
        dataSets = [{
          plotType           = "LINE"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            prometheusQuery = "max(orchestra_http_inflight_requests{${local.prom_selector}})"
          }
        }]
        # Cloud Run adds instances at about 60 % of this; the server sheds at 100 %.
        thresholds = [{ value = local.concurrency, color = "YELLOW", direction = "ABOVE" }]
        yAxis      = { label = "requests", scale = "LINEAR" }
      }
    },
    {
      title = "Rejected requests by reason (per second)"
      xyChart = {
        dataSets = [{
          plotType           = "STACKED_AREA"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            prometheusQuery = "sum by (reason) (rate(orchestra_http_rejected_total{${local.prom_selector}}[5m]))"
          }
        }]
        yAxis = { label = "requests/s", scale = "LINEAR" }
      }
    },
    {
      title = "Gateway latency p95 by route, server side (s)"
      xyChart = {
        dataSets = [{
          plotType           = "LINE"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            prometheusQuery = "histogram_quantile(0.95, sum by (le, route) (rate(orchestra_http_request_duration_seconds_bucket{${local.prom_selector}}[5m])))"
            unitOverride    = "s"
          }
        }]
        yAxis = { label = "seconds", scale = "LINEAR" }
      }
    },
    {
      title = "Gateway responses by route and code (per second)"
      xyChart = {
        dataSets = [{
          plotType           = "STACKED_AREA"
          minAlignmentPeriod = "60s"
          timeSeriesQuery = {
            prometheusQuery = "sum by (route, code) (rate(orchestra_http_requests_total{${local.prom_selector}}[5m]))"
          }
        }]
        yAxis = { label = "requests/s", scale = "LINEAR" }
      }
    },
  ]
}

resource "google_monitoring_dashboard" "orchestra" {
  dashboard_json = jsonencode({
    displayName = "Orchestra ${var.env}"
    mosaicLayout = {
      columns = 48
      # Two panels per row, in the order of local.dashboard_widgets.
      tiles = [for i, w in local.dashboard_widgets : {
        xPos   = (i % 2) * 24
        yPos   = floor(i / 2) * 16
        width  = 24
        height = 16
        widget = w
      }]
    }
  })
  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_notification_channel" "email" {
  for_each = toset(var.notification_emails)

  display_name = "Orchestra ${var.env}: ${each.value}"
  type         = "email"
  labels = {
    email_address = each.value
  }
  depends_on = [google_project_service.enabled]
}

# --- alert policies --------------------------------------------------------------------

resource "google_monitoring_alert_policy" "latency_p95" {
  display_name          = "Orchestra ${var.env}: request latency p95 above ${var.alert_latency_p95_ms} ms"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.notification_channels

  conditions {
    display_name = "p95 of run.googleapis.com/request_latencies > ${var.alert_latency_p95_ms} ms for ${var.alert_duration_seconds} s"
    condition_threshold {
      filter          = "metric.type=\"run.googleapis.com/request_latencies\" AND ${local.run_filter}"
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_latency_p95_ms
      duration        = "${var.alert_duration_seconds}s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_PERCENTILE_95"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.label.service_name"]
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Latency includes the upstream model's time and, for streams, the whole stream. Compare with the dashboard's upstream latency panel: if upstream latency rose too, the provider is slow (fallbacks and circuit breakers act per model route); if not, look at CPU and instance count. docs/DEPLOY.md, section Operations."
  }
}

resource "google_monitoring_alert_policy" "cpu" {
  display_name          = "Orchestra ${var.env}: CPU utilisation above ${var.alert_cpu_utilization * 100} %"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.notification_channels

  conditions {
    display_name = "p95 of container/cpu/utilizations > ${var.alert_cpu_utilization} for ${var.alert_duration_seconds} s"
    condition_threshold {
      filter          = "metric.type=\"run.googleapis.com/container/cpu/utilizations\" AND ${local.run_filter}"
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_cpu_utilization
      duration        = "${var.alert_duration_seconds}s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_PERCENTILE_95"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.label.service_name"]
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Instances are busy. If max_instances is reached, raise it or lower concurrency; otherwise Cloud Run is adding instances. docs/DEPLOY.md, section Operations."
  }
}

resource "google_monitoring_alert_policy" "memory" {
  display_name          = "Orchestra ${var.env}: memory utilisation above ${var.alert_memory_utilization * 100} %"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.notification_channels

  conditions {
    display_name = "p95 of container/memory/utilizations > ${var.alert_memory_utilization} for ${var.alert_duration_seconds} s"
    condition_threshold {
      filter          = "metric.type=\"run.googleapis.com/container/memory/utilizations\" AND ${local.run_filter}"
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_memory_utilization
      duration        = "${var.alert_duration_seconds}s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_PERCENTILE_95"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.label.service_name"]
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Memory counts the embedded SQLite file too (Cloud Run's filesystem is in memory). Check the storage backend and the response cache size; an instance that reaches its limit is restarted. docs/DEPLOY.md, section Operations."
  }
}

resource "google_monitoring_alert_policy" "error_rate" {
  display_name          = "Orchestra ${var.env}: 5xx share above ${var.alert_error_rate * 100} %"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "5xx / all of run.googleapis.com/request_count > ${var.alert_error_rate} for ${var.alert_duration_seconds} s"
    condition_threshold {
      filter             = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run_filter} AND metric.labels.response_code_class=\"5xx\""
      denominator_filter = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run_filter}"
      comparison         = "COMPARISON_GT"
      threshold_value    = var.alert_error_rate
      duration           = "${var.alert_duration_seconds}s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
      denominator_aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "5xx from Orchestra: 502/504 mean upstream providers fail or time out after retries and fallbacks; 503 means load shedding (instances at max_instances) or draining. The JSON logs carry the error type per request. docs/DEPLOY.md, section Operations."
  }
}

# --- alert policies on Orchestra's own metrics (need the Prometheus sidecar) -------------

locals {
  # Upstream attempts in the window below which the error-share alert stays quiet: one
  # failed attempt out of three is no incident.
  upstream_alert_min_attempts = 20
}

resource "google_monitoring_alert_policy" "spend_rate" {
  count = var.prometheus_sidecar ? 1 : 0

  display_name          = "Orchestra ${var.env}: spend above ${var.alert_spend_usd_per_hour} USD per hour"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.notification_channels

  conditions {
    display_name = "increase of orchestra_cost_usd_total over 1 h > ${var.alert_spend_usd_per_hour}"
    condition_prometheus_query_language {
      query               = "sum(increase(orchestra_cost_usd_total{${local.prom_selector}}[1h])) > ${var.alert_spend_usd_per_hour}"
      duration            = "0s"
      evaluation_interval = "60s"
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Cost is what Orchestra accounted from models[].price and the tokens providers reported (docs/CONFIG.md, prices). See the dashboard's cost and tokens panels for the model, and /admin/spend for the key. A runaway client: lower its key's budget or rate limit. docs/OPERATIONS.md, Dashboards and alerts."
  }
}

resource "google_monitoring_alert_policy" "upstream_error_share" {
  count = var.prometheus_sidecar ? 1 : 0

  display_name          = "Orchestra ${var.env}: fallbacks and retries above ${var.alert_upstream_error_share * 100} % of upstream attempts"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.notification_channels

  conditions {
    display_name = "(fallbacks + retries) / upstream attempts > ${var.alert_upstream_error_share} for ${var.alert_duration_seconds} s"
    condition_prometheus_query_language {
      # A counter that has never moved may have no series yet: `or vector(0)` keeps the sum.
      query               = "((sum(rate(orchestra_fallbacks_total{${local.prom_selector}}[5m])) or vector(0)) + (sum(rate(orchestra_retries_total{${local.prom_selector}}[5m])) or vector(0))) / sum(rate(orchestra_upstream_requests_total{${local.prom_selector}}[5m])) > ${var.alert_upstream_error_share} and on() sum(increase(orchestra_upstream_requests_total{${local.prom_selector}}[5m])) >= ${local.upstream_alert_min_attempts}"
      duration            = "${var.alert_duration_seconds}s"
      evaluation_interval = "60s"
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A provider fails or times out: Orchestra retries and falls back, so clients may still be served, more slowly and perhaps by another model. The dashboard's upstream panels show which provider and outcome; orchestra_circuit_open shows open breakers. docs/OPERATIONS.md, Dashboards and alerts."
  }
}
