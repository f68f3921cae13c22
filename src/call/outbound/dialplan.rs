//! The branch's dial plan: what an agent types (`030 1234-56`, `0033 1 23 45 67 89`,
//! `+1 (212) 555-1234`) becomes one E.164 number, the only form limits and trunk choice look at;
//! a trunk then gets it written the way it wants.
use super::config::{NumberFormat, OutboundConfig};

/// The fewest digits (country code included) a number may have: shorter ones are service and
/// emergency codes, which a branch's own phones dial, not a contact center desk.
pub const MIN_DIGITS: usize = 6;
/// E.164's longest number.
pub const MAX_DIGITS: usize = 15;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("{0:?} has a character that is not a digit, space, dash, dot, bracket or leading +")]
    NotANumber(String),
    #[error("{0:?} has {1} digits; numbers have {MIN_DIGITS} to {MAX_DIGITS}")]
    Length(String, usize),
}

/// An E.164 number: `+` and 6 to 15 digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct E164(String);

impl E164 {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without `+`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    pub fn starts_with(&self, prefix: &str) -> bool {
        self.0.starts_with(prefix)
    }
}

impl std::fmt::Display for E164 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the agent typed, as an E.164 number by the branch's dial plan.
pub fn normalise(typed: &str, plan: &OutboundConfig) -> Result<E164, NumberError> {
    let trimmed = typed.trim();
    let (plus, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(NumberError::NotANumber(typed.to_owned())),
        }
    }
    let international = if plus {
        digits
    } else if let Some(rest) = strip_nonempty(&digits, &plan.international_prefix) {
        rest.to_owned()
    } else if let Some(rest) = strip_nonempty(&digits, &plan.national_prefix) {
        format!("{}{rest}", plan.country_code)
    } else {
        format!("{}{digits}", plan.country_code)
    };
    let n = international.len();
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&n) || international.starts_with('0') {
        return Err(NumberError::Length(typed.to_owned(), n));
    }
    Ok(E164(format!("+{international}")))
}

/// A configured E.164 number (a caller id): `+` and digits only.
pub fn parse_e164(text: &str) -> Result<E164, NumberError> {
    let digits = text
        .strip_prefix('+')
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| NumberError::NotANumber(text.to_owned()))?;
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits.len()) {
        return Err(NumberError::Length(text.to_owned(), digits.len()));
    }
    Ok(E164(text.to_owned()))
}

/// `number` as a trunk with `format` wants it.
pub fn format(number: &E164, format: NumberFormat, plan: &OutboundConfig) -> String {
    match format {
        NumberFormat::E164 => number.as_str().to_owned(),
        NumberFormat::International => number.digits().to_owned(),
        NumberFormat::National => match number.digits().strip_prefix(&plan.country_code) {
            Some(national) => format!("{}{national}", plan.national_prefix),
            None => format!("{}{}", plan.international_prefix, number.digits()),
        },
    }
}

fn strip_nonempty<'a>(digits: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        None
    } else {
        digits.strip_prefix(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn germany() -> OutboundConfig {
        plan("49", "0", "00")
    }

    fn nanp() -> OutboundConfig {
        plan("1", "1", "011")
    }

    fn plan(cc: &str, national: &str, international: &str) -> OutboundConfig {
        toml::from_str(&format!(
            "country_code = {cc:?}\nnational_prefix = {national:?}\ninternational_prefix = {international:?}"
        ))
        .unwrap()
    }

    #[test]
    fn numbers_as_agents_type_them_become_e164() {
        let de = germany();
        for (typed, want) in [
            ("030 1234-56", "+4930123456"),
            ("+49 30 123456", "+4930123456"),
            ("0033 1 23 45 67 89", "+33123456789"),
            ("(030) 123.456", "+4930123456"),
            ("30123456", "+4930123456"),
        ] {
            assert_eq!(normalise(typed, &de).unwrap().as_str(), want, "{typed}");
        }
        let us = nanp();
        for (typed, want) in [
            ("(212) 555-1234", "+12125551234"),
            ("1 212 555 1234", "+12125551234"),
            ("011 44 20 7946 0958", "+442079460958"),
            ("+1-212-555-1234", "+12125551234"),
        ] {
            assert_eq!(normalise(typed, &us).unwrap().as_str(), want, "{typed}");
        }
    }

    #[test]
    fn short_codes_letters_and_overlong_numbers_are_refused() {
        let de = germany();
        for typed in [
            "112",
            "110",
            "+49",
            "0800 CALL ME",
            "1234567890123456789",
            "sip:x@y",
            "",
        ] {
            assert!(normalise(typed, &de).is_err(), "{typed:?} was accepted");
        }
    }

    #[test]
    fn a_trunk_gets_the_number_in_its_own_format() {
        let de = germany();
        let home = normalise("030123456", &de).unwrap();
        let abroad = normalise("+33123456789", &de).unwrap();
        assert_eq!(format(&home, NumberFormat::E164, &de), "+4930123456");
        assert_eq!(format(&home, NumberFormat::National, &de), "030123456");
        assert_eq!(
            format(&abroad, NumberFormat::National, &de),
            "0033123456789"
        );
        assert_eq!(
            format(&abroad, NumberFormat::International, &de),
            "33123456789"
        );
    }

    #[test]
    fn a_configured_caller_id_must_be_e164() {
        assert!(parse_e164("+4930123456").is_ok());
        for bad in ["4930123456", "+49 30 123456", "+", "+12", "+4930abc"] {
            assert!(parse_e164(bad).is_err(), "{bad:?}");
        }
    }
}
