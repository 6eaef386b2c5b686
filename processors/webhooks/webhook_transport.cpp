#include "processors/webhooks/webhook_transport.h"

namespace cm::webhooks {

std::string_view TransportFailureName(TransportFailure failure) {
  switch (failure) {
    case TransportFailure::kNone:
      return "none";
    case TransportFailure::kTimeout:
      return "timeout";
    case TransportFailure::kConnection:
      return "connection";
    case TransportFailure::kTls:
      return "tls";
    case TransportFailure::kBlockedAddress:
      return "blocked_address";
    case TransportFailure::kInvalidUrl:
      return "invalid_url";
  }
  return "unknown";
}

}  // namespace cm::webhooks
