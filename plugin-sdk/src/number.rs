//! Numbers as text for verdict messages.

/// `x` for a message: four significant digits (all the digits before the
/// point of a larger number), no trailing zeros, e.g. `0.001235`, `-99.5`,
/// `123457`; zero, NaN and infinities as Rust prints them.
///
/// Computed values such as a forecast or a burn rate carry float noise
/// (`80.00000000001`) that would otherwise end up in alert messages and
/// notifications; a message needs only enough digits to compare the value
/// with its threshold.
///
/// ```
/// assert_eq!(vigil_plugin_sdk::short_number(80.00000000001), "80");
/// assert_eq!(vigil_plugin_sdk::short_number(0.00123456), "0.001235");
/// ```
pub fn short_number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (3.0 - x.abs().log10().floor()).clamp(0.0, 15.0) as usize;
    let text = format!("{x:.digits$}");
    match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_messages_are_short() {
        assert_eq!(short_number(80.00000000001), "80");
        assert_eq!(short_number(0.00123456), "0.001235");
        assert_eq!(short_number(-99.5), "-99.5");
        assert_eq!(short_number(123456.7), "123457");
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(f64::NAN), "NaN");
        assert_eq!(short_number(f64::NEG_INFINITY), "-inf");
    }
}
