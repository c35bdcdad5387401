//! The timestamps the upstreams print, formatted from Unix seconds without a date crate.

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A civil date and time of day.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    weekday: usize,
    hour: i64,
    minute: i64,
    second: i64,
}

/// Splits local seconds (Unix seconds shifted by the zone offset) into calendar fields,
/// with the days-to-civil conversion of the proleptic Gregorian calendar.
fn civil(local: i64) -> Civil {
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    Civil {
        year: yoe + era * 400 + i64::from(month <= 2),
        month,
        day: (doy - (153 * mp + 2) / 5 + 1) as u32,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as usize,
        hour: secs / 3600,
        minute: secs / 60 % 60,
        second: secs % 60,
    }
}

/// Danbooru's form, in US Eastern daylight time like the recordings:
/// `2023-03-17T03:50:48.762-04:00`.
pub(crate) fn danbooru(unix: i64) -> String {
    let c = civil(unix - 4 * 3600);
    let millis = unix.rem_euclid(997);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{millis:03}-04:00",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Gelbooru's form, in US Central daylight time like the recordings:
/// `Wed Mar 15 09:46:20 -0500 2023`.
pub(crate) fn gelbooru(unix: i64) -> String {
    let c = civil(unix - 5 * 3600);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} -0500 {}",
        WEEKDAYS[c.weekday],
        MONTHS[c.month as usize - 1],
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.year
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_recorded_timestamps() {
        // fixtures/gelbooru/posts.json: change 1678891583 is two minutes after created_at.
        assert_eq!(gelbooru(1_678_891_580), "Wed Mar 15 09:46:20 -0500 2023");
        assert!(danbooru(1_679_039_448).starts_with("2023-03-17T03:50:48."));
        assert!(danbooru(0).starts_with("1969-12-31T20:00:00."));
    }
}
