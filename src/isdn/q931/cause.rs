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

/// The SIP final status for a call an ISDN cause ended before its answer, where a call
/// crosses from an E1 to SIP (RFC 3398 §7.2.4.1; causes it leaves out go by their class).
pub fn to_sip_status(value: u8) -> u16 {
    match value {
        UNALLOCATED_NUMBER | 2 | NO_ROUTE_TO_DESTINATION | 26 => 404,
        USER_BUSY => 486,
        NO_USER_RESPONDING => 408,
        NO_ANSWER | 20 | NORMAL_CLEARING | NORMAL_UNSPECIFIED => 480,
        CALL_REJECTED | 55 | 57 | 87 => 403,
        NUMBER_CHANGED | 23 => 410,
        DESTINATION_OUT_OF_ORDER => 502,
        INVALID_NUMBER_FORMAT => 484,
        29 | 79 => 501,
        NO_CIRCUIT_AVAILABLE
        | NETWORK_OUT_OF_ORDER
        | TEMPORARY_FAILURE
        | SWITCHING_EQUIPMENT_CONGESTION
        | REQUESTED_CHANNEL_NOT_AVAILABLE
        | RESOURCE_UNAVAILABLE
        | BEARER_CAPABILITY_NOT_AVAILABLE
        | INCOMPATIBLE_DESTINATION => 503,
        BEARER_CAPABILITY_NOT_IMPLEMENTED | 70 => 488,
        RECOVERY_ON_TIMER_EXPIRY => 504,
        0..=31 => 480,
        32..=47 => 503,
        _ => 500,
    }
}

/// The ISDN cause for a SIP final status, where a call crosses from SIP to an E1 (RFC 3398
/// §8.2.6.1; statuses it leaves out go by their class).
pub fn from_sip_status(status: u16) -> u8 {
    match status {
        400 | 481 | 500 | 503 => TEMPORARY_FAILURE,
        401 | 402 | 403 | 407 | 603 => CALL_REJECTED,
        404 | 485 | 604 => UNALLOCATED_NUMBER,
        405 => 63,
        406 | 415 | 501 => 79,
        408 | 504 => RECOVERY_ON_TIMER_EXPIRY,
        410 => NUMBER_CHANGED,
        413 | 414 | 416 | 420 | 505 | 513 => INTERWORKING,
        480 => NO_USER_RESPONDING,
        482 | 483 => 25,
        484 => INVALID_NUMBER_FORMAT,
        486 | 600 => USER_BUSY,
        487 => NORMAL_UNSPECIFIED,
        488 | 606 => BEARER_CAPABILITY_NOT_AVAILABLE,
        502 => NETWORK_OUT_OF_ORDER,
        400..=499 => NORMAL_UNSPECIFIED,
        500..=599 => TEMPORARY_FAILURE,
        _ => NORMAL_UNSPECIFIED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_and_sip_statuses_map_as_rfc_3398_says() {
        for (cause, status) in [
            (USER_BUSY, 486),
            (UNALLOCATED_NUMBER, 404),
            (NO_USER_RESPONDING, 408),
            (NO_ANSWER, 480),
            (CALL_REJECTED, 403),
            (NO_CIRCUIT_AVAILABLE, 503),
            (INVALID_NUMBER_FORMAT, 484),
            (RECOVERY_ON_TIMER_EXPIRY, 504),
            (BEARER_CAPABILITY_NOT_IMPLEMENTED, 488),
        ] {
            assert_eq!(to_sip_status(cause), status, "cause {cause}");
        }
        for (status, cause) in [
            (486, USER_BUSY),
            (404, UNALLOCATED_NUMBER),
            (480, NO_USER_RESPONDING),
            (403, CALL_REJECTED),
            (503, TEMPORARY_FAILURE),
            (484, INVALID_NUMBER_FORMAT),
            (408, RECOVERY_ON_TIMER_EXPIRY),
            (600, USER_BUSY),
            (499, NORMAL_UNSPECIFIED),
        ] {
            assert_eq!(from_sip_status(status), cause, "status {status}");
        }
        // Every cause a busy or unreachable callee gives comes back to it through SIP.
        for cause in [
            USER_BUSY,
            UNALLOCATED_NUMBER,
            CALL_REJECTED,
            INVALID_NUMBER_FORMAT,
        ] {
            assert_eq!(from_sip_status(to_sip_status(cause)), cause);
        }
    }
}
