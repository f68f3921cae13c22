//! Q.850 cause values a PRI call meets, with their names for logs and CDRs.

pub const UNALLOCATED_NUMBER: u8 = 1;
pub const NO_ROUTE_TO_DESTINATION: u8 = 3;
pub const CHANNEL_UNACCEPTABLE: u8 = 6;
pub const NORMAL_CLEARING: u8 = 16;
pub const USER_BUSY: u8 = 17;
pub const NO_USER_RESPONDING: u8 = 18;
pub const NO_ANSWER: u8 = 19;
pub const CALL_REJECTED: u8 = 21;
pub const NUMBER_CHANGED: u8 = 22;
pub const DESTINATION_OUT_OF_ORDER: u8 = 27;
pub const INVALID_NUMBER_FORMAT: u8 = 28;
pub const RESPONSE_TO_STATUS_ENQUIRY: u8 = 30;
pub const NORMAL_UNSPECIFIED: u8 = 31;
pub const NO_CIRCUIT_AVAILABLE: u8 = 34;
pub const NETWORK_OUT_OF_ORDER: u8 = 38;
pub const TEMPORARY_FAILURE: u8 = 41;
pub const SWITCHING_EQUIPMENT_CONGESTION: u8 = 42;
pub const REQUESTED_CHANNEL_NOT_AVAILABLE: u8 = 44;
pub const RESOURCE_UNAVAILABLE: u8 = 47;
pub const BEARER_CAPABILITY_NOT_AVAILABLE: u8 = 58;
pub const BEARER_CAPABILITY_NOT_IMPLEMENTED: u8 = 65;
pub const INVALID_CALL_REFERENCE: u8 = 81;
pub const CHANNEL_DOES_NOT_EXIST: u8 = 82;
pub const INCOMPATIBLE_DESTINATION: u8 = 88;
pub const MANDATORY_IE_MISSING: u8 = 96;
pub const MESSAGE_TYPE_NON_EXISTENT: u8 = 97;
pub const MESSAGE_NOT_COMPATIBLE_WITH_STATE_OR_UNKNOWN: u8 = 98;
pub const IE_NON_EXISTENT: u8 = 99;
pub const INVALID_IE_CONTENTS: u8 = 100;
pub const MESSAGE_NOT_COMPATIBLE_WITH_STATE: u8 = 101;
pub const RECOVERY_ON_TIMER_EXPIRY: u8 = 102;
pub const PROTOCOL_ERROR: u8 = 111;
pub const INTERWORKING: u8 = 127;

/// The cause's name, as Q.850 gives it (lower case, for log fields).
pub fn name(value: u8) -> &'static str {
    match value {
        UNALLOCATED_NUMBER => "unallocated number",
        NO_ROUTE_TO_DESTINATION => "no route to destination",
        CHANNEL_UNACCEPTABLE => "channel unacceptable",
        NORMAL_CLEARING => "normal clearing",
        USER_BUSY => "user busy",
        NO_USER_RESPONDING => "no user responding",
        NO_ANSWER => "no answer",
        CALL_REJECTED => "call rejected",
        NUMBER_CHANGED => "number changed",
        DESTINATION_OUT_OF_ORDER => "destination out of order",
        INVALID_NUMBER_FORMAT => "invalid number format",
        RESPONSE_TO_STATUS_ENQUIRY => "response to status enquiry",
        NORMAL_UNSPECIFIED => "normal, unspecified",
        NO_CIRCUIT_AVAILABLE => "no circuit/channel available",
        NETWORK_OUT_OF_ORDER => "network out of order",
        TEMPORARY_FAILURE => "temporary failure",
        SWITCHING_EQUIPMENT_CONGESTION => "switching equipment congestion",
        REQUESTED_CHANNEL_NOT_AVAILABLE => "requested channel not available",
        RESOURCE_UNAVAILABLE => "resource unavailable",
        BEARER_CAPABILITY_NOT_AVAILABLE => "bearer capability not available",
        BEARER_CAPABILITY_NOT_IMPLEMENTED => "bearer capability not implemented",
        INVALID_CALL_REFERENCE => "invalid call reference",
        CHANNEL_DOES_NOT_EXIST => "identified channel does not exist",
        INCOMPATIBLE_DESTINATION => "incompatible destination",
        MANDATORY_IE_MISSING => "mandatory information element missing",
        MESSAGE_TYPE_NON_EXISTENT => "message type non-existent",
        MESSAGE_NOT_COMPATIBLE_WITH_STATE_OR_UNKNOWN => {
            "message not compatible with call state or non-existent"
        }
        IE_NON_EXISTENT => "information element non-existent",
        INVALID_IE_CONTENTS => "invalid information element contents",
        MESSAGE_NOT_COMPATIBLE_WITH_STATE => "message not compatible with call state",
        RECOVERY_ON_TIMER_EXPIRY => "recovery on timer expiry",
        PROTOCOL_ERROR => "protocol error, unspecified",
        INTERWORKING => "interworking, unspecified",
        _ => "other cause",
    }
}
