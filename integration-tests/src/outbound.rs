//! Calls out of the gateway in tests: a dial plan and the test trunk's way out.
use std::net::SocketAddr;

/// The branch is in Germany: `030 …` is Berlin, `0900 …` premium, `00…` abroad; a number that
/// does not answer is given up after 3 s.
pub const DIAL_PLAN: &str =
    "[outbound]\ncountry_code = \"49\"\nnational_prefix = \"0\"\nring_timeout_s = 3\n";

/// `trunk_extra` for the test config's trunk, `carrier`: every number to `proxy` in
/// international format (no `+`: baresip's account is a plain user name), the branch's number
/// asserted with P-Asserted-Identity.
pub fn carrier_to(proxy: SocketAddr) -> String {
    format!(
        "[trunk.outbound]\nproxy = \"sip:{proxy}\"\ncaller_id = \"+4930555000\"\n\
         number_format = \"international\"\nidentity = \"pai\"\n"
    )
}
