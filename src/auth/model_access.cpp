#include "auth/model_access.hpp"

#include <string>

#include "auth/key_record.hpp"

namespace orchestra::auth {

std::optional<limits::Refusal> ModelAccess::Admit(const limits::Request& request,
                                                  limits::Ticket& /*ticket*/) {
  if (request.model.empty() || request.policy == nullptr || request.policy->models.empty()) {
    return std::nullopt;
  }
  if (ModelAllowed(*request.policy, request.model)) return std::nullopt;
  // The model name comes from the client: bounded in the message.
  std::string shown(request.model.substr(0, 128));
  return limits::Refusal{Error(ErrorCode::kModelNotAllowed,
                               "this API key may not call the model '" + shown + "'", "model"),
                         "model_not_allowed"};
}

}  // namespace orchestra::auth
