#include "processors/usage/usage_commands.h"

#include "processors/usage/usage_stores.h"

namespace cm::usage {

std::optional<nlohmann::json> CheckSetPlan(const Catalog& c, const nlohmann::json& cmd) {
  using nlohmann::json;
  const json plan = cmd.value("plan", json());
  if (!plan.is_string())
    return ErrorBody("validation_error", "plan is required", {{"plans", c.PlanNames()}});
  if (!c.FindPlan(plan.get<std::string>())) {
    return ErrorBody("validation_error", "unknown plan '" + plan.get<std::string>() + "'",
                     {{"plan", plan}, {"plans", c.PlanNames()}});
  }
  if (cmd.contains("billingAnchorDay")) {
    const json& a = cmd["billingAnchorDay"];
    if (!a.is_number_integer() || a.get<int64_t>() < 1 || a.get<int64_t>() > 31) {
      return ErrorBody("validation_error", "billingAnchorDay must be an integer 1..31",
                       {{"billingAnchorDay", a}});
    }
  }
  return std::nullopt;
}

std::optional<nlohmann::json> CheckSubscribeAlerts(const Catalog& c, const nlohmann::json& cmd) {
  using nlohmann::json;
  const json metric = cmd.value("metricType", json());
  if (!metric.is_string() || !c.FindMetric(metric.get<std::string>())) {
    return ErrorBody("validation_error", "metricType must name a catalog metric",
                     {{"metricType", metric}, {"metricTypes", c.MetricTypes()}});
  }
  if (cmd.contains("thresholds") && !cmd["thresholds"].is_array())
    return ErrorBody("validation_error", "thresholds must be an array of percentages", {});
  json tj = cmd.contains("thresholds") ? cmd["thresholds"] : json::array();
  if (cmd.contains("threshold")) tj.push_back(cmd["threshold"]);
  if (tj.empty())
    return ErrorBody("validation_error", "threshold (or thresholds) is required, in percent", {});
  for (const auto& t : tj) {
    if (!t.is_number() || !(t.get<double>() > 0) || t.get<double>() > 100) {
      return ErrorBody("validation_error", "thresholds must be percentages in (0, 100]",
                       {{"threshold", t}});
    }
  }
  json cj = cmd.value("notificationChannels", json::array({"in_app"}));
  if (!cj.is_array() || cj.empty())
    return ErrorBody("validation_error", "notificationChannels must be a non-empty array", {});
  for (const auto& ch : cj) {
    if (!ch.is_string() || (ch != "email" && ch != "webhook" && ch != "in_app")) {
      return ErrorBody("validation_error", "notificationChannels must be email, webhook or in_app",
                       {{"channel", ch}});
    }
  }
  return std::nullopt;
}

}  // namespace cm::usage
