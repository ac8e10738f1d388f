#pragma once

#include <optional>
#include <string_view>

#include "limits/admission.hpp"

// The admission stage that holds a key to its `models` list (issue 13): a request naming a model
// the key may not call is refused with 403, code model_not_allowed, naming the model; counted in
// orchestra_http_rejected_total{reason="model_not_allowed"}. Requests without a model (memory,
// checkpoints, admin) and keys without a list pass. Runs before the rate limits, so that a
// refused request reserves nothing. Stateless: thread-safe.
namespace orchestra::auth {

class ModelAccess final : public limits::Stage {
 public:
  std::string_view name() const override { return "model_access"; }
  std::optional<limits::Refusal> Admit(const limits::Request& request,
                                       limits::Ticket& ticket) override;
  void Settle(const limits::Request&, const limits::Ticket&, const limits::Outcome&) override {}
};

}  // namespace orchestra::auth
