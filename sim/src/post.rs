//! Posts as the simulator holds them: generated ones described by an image index and a
//! [`PostSpec`], and recorded ones kept as their original JSON text.
//!
//! The image index is the simulator's unit of identity across sources: the same index
//! on two sources yields the same MD5, which is how a world controls its overlaps.

use serde::Deserialize;
use serde_json::value::RawValue;

/// A content rating on the four-level scale Danbooru and Gelbooru use since 2022.
///
/// Each family prints it its own way: Danbooru `g`/`s`/`q`/`e`, Gelbooru words,
/// Gelbooru 0.2 words (`general`, `safe`, ...), Moebooru `s`/`q`/`e`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rating {
    /// Danbooru `g`, Gelbooru `general`.
    General,
    /// Danbooru `s`, Gelbooru `sensitive`; Gelbooru 0.2 prints it `safe`.
    Sensitive,
    /// `q` / `questionable` everywhere.
    Questionable,
    /// `e` / `explicit` everywhere.
    Explicit,
}

impl Rating {
    /// Danbooru's one-letter form.
    pub fn letter(self) -> &'static str {
        match self {
            Rating::General => "g",
            Rating::Sensitive => "s",
            Rating::Questionable => "q",
            Rating::Explicit => "e",
        }
    }

    /// Gelbooru's word form.
    pub fn word(self) -> &'static str {
        match self {
            Rating::General => "general",
            Rating::Sensitive => "sensitive",
            Rating::Questionable => "questionable",
            Rating::Explicit => "explicit",
        }
    }

    /// The old three-level letter of Moebooru and Gelbooru 0.2 XML, where `s` means safe.
    pub fn safe_letter(self) -> &'static str {
        match self {
            Rating::General | Rating::Sensitive => "s",
            other => other.letter(),
        }
    }

    /// Reads a rating as any family prints it in a post; `s` is taken as Danbooru's
    /// sensitive, which is the safer reading for an unknown family.
    pub(crate) fn from_wire(value: &str) -> Option<Rating> {
        match value {
            "g" | "general" => Some(Rating::General),
            "s" | "sensitive" | "safe" => Some(Rating::Sensitive),
            "q" | "questionable" => Some(Rating::Questionable),
            "e" | "explicit" => Some(Rating::Explicit),
            _ => None,
        }
    }
}

/// What a generated post looks like beyond its tags.
///
/// [`PostSpec::for_image`] derives a plausible spec from the image index; override single
/// fields with struct update syntax: `PostSpec { restricted: true, ..PostSpec::for_image(i) }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostSpec {
    /// The post's rating.
    pub rating: Rating,
    /// The post's score; Gelbooru 0.2 prints a zero score as `null` on odd post ids.
    pub score: i64,
    /// Danbooru only: the viewer may not see the file, so `md5`, `file_url`,
    /// `large_file_url` and `preview_file_url` are left out of the post.
    pub restricted: bool,
    /// Width of the original file in pixels.
    pub width: u32,
    /// Height of the original file in pixels.
    pub height: u32,
}

/// Original sizes the generated posts pick from; some are under 850 px wide so that
/// posts without a sample exist too.
const SIZES: [(u32, u32); 8] = [
    (1200, 1700),
    (2480, 3508),
    (1920, 1080),
    (1000, 1414),
    (800, 1131),
    (3000, 2000),
    (700, 990),
    (4096, 2304),
];

impl PostSpec {
    /// A deterministic spec for an image: mostly general, some sensitive, a few
    /// questionable or explicit; scores skewed low with a few high ones.
    pub fn for_image(image: u64) -> PostSpec {
        let h = mix(image ^ 0x5eed_0001);
        let rating = match h % 100 {
            0..70 => Rating::General,
            70..88 => Rating::Sensitive,
            88..96 => Rating::Questionable,
            _ => Rating::Explicit,
        };
        let popular = if (h >> 20) % 10 == 0 {
            (h >> 24) % 400
        } else {
            0
        };
        let (width, height) = SIZES[((h >> 32) % SIZES.len() as u64) as usize];
        PostSpec {
            rating,
            score: ((h >> 8) % 60 + popular) as i64,
            restricted: false,
            width,
            height,
        }
    }
}

impl Default for PostSpec {
    /// The spec of image 0, so that a default is as plausible as any generated post.
    fn default() -> PostSpec {
        PostSpec::for_image(0)
    }
}

/// The MD5 the simulator gives an image: 32 lowercase hex digits, a function of the
/// image index alone, so the same image on two sources is recognised as one.
///
/// It is not the digest of any file; it only has the shape of one.
pub fn image_md5(image: u64) -> String {
    format!(
        "{:016x}{:016x}",
        mix(image ^ 0x6d64_3561),
        mix(image ^ 0x6d64_3562)
    )
}

/// Gelbooru 0.2's file name for an image: 40 hex digits unrelated to the MD5, as on
/// Safebooru.
pub(crate) fn image_file_stem(image: u64) -> String {
    let tail = mix(image ^ 0x7368_6133) >> 32;
    format!(
        "{:016x}{:016x}{tail:08x}",
        mix(image ^ 0x7368_6131),
        mix(image ^ 0x7368_6132)
    )
}

/// SplitMix64's finaliser: a cheap, well-spread hash for deriving per-image values.
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One post of one source, with what searching needs kept apart from how it is printed.
#[derive(Debug, Clone)]
pub(crate) struct Post {
    pub id: u64,
    /// Sorted and free of duplicates, for binary search.
    pub tags: Vec<String>,
    pub rating: Option<Rating>,
    pub score: i64,
    pub width: u32,
    pub height: u32,
    pub md5: Option<String>,
    pub deleted: bool,
    pub body: PostBody,
}

/// How a post is printed.
#[derive(Debug, Clone)]
pub(crate) enum PostBody {
    /// Built from the image index and spec in the source family's field set.
    Generated { image: u64, spec: PostSpec },
    /// The recorded JSON object, served byte for byte.
    Recorded(Box<RawValue>),
}

impl Post {
    /// A generated post of `image` with the given id, tags and spec.
    pub fn generated(id: u64, image: u64, tags: &[&str], spec: PostSpec) -> Post {
        Post {
            id,
            tags: sorted_tags(tags.iter().copied()),
            rating: Some(spec.rating),
            score: spec.score,
            width: spec.width,
            height: spec.height,
            md5: (!spec.restricted).then(|| image_md5(image)),
            deleted: false,
            body: PostBody::Generated { image, spec },
        }
    }

    /// Whether the post carries `tag` exactly.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.binary_search_by(|t| t.as_str().cmp(tag)).is_ok()
    }
}

/// The searchable facts of a recorded post object, in any family's field names.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RecordedFacts {
    pub id: u64,
    pub tags: Option<String>,
    pub tag_string: Option<String>,
    pub tag_string_general: Option<String>,
    pub tag_string_artist: Option<String>,
    pub tag_string_copyright: Option<String>,
    pub tag_string_character: Option<String>,
    pub tag_string_meta: Option<String>,
    pub rating: Option<String>,
    pub score: Option<i64>,
    pub md5: Option<String>,
    pub hash: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub image_width: Option<u32>,
    pub image_height: Option<u32>,
    pub is_deleted: Option<bool>,
    pub status: Option<String>,
}

impl RecordedFacts {
    /// The post these facts describe, printed as the recorded text.
    pub fn into_post(self, raw: Box<RawValue>) -> Post {
        let tags = self
            .tag_string
            .as_deref()
            .or(self.tags.as_deref())
            .unwrap_or("");
        Post {
            id: self.id,
            tags: sorted_tags(tags.split_whitespace()),
            rating: self.rating.as_deref().and_then(Rating::from_wire),
            score: self.score.unwrap_or(0),
            width: self.width.or(self.image_width).unwrap_or(0),
            height: self.height.or(self.image_height).unwrap_or(0),
            md5: self.md5.or(self.hash),
            deleted: self.is_deleted.unwrap_or(false) || self.status.as_deref() == Some("deleted"),
            body: PostBody::Recorded(raw),
        }
    }

    /// Danbooru's per-category tag strings with their category codes.
    pub fn categorised_tags(&self) -> impl Iterator<Item = (&str, u8)> {
        let lists = [
            (&self.tag_string_general, 0),
            (&self.tag_string_artist, 1),
            (&self.tag_string_copyright, 3),
            (&self.tag_string_character, 4),
            (&self.tag_string_meta, 5),
        ];
        lists.into_iter().flat_map(|(list, category)| {
            let names = list.as_deref().unwrap_or("").split_whitespace();
            names.map(move |name| (name, category))
        })
    }
}

fn sorted_tags<'a>(tags: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut tags: Vec<String> = tags.map(str::to_owned).collect();
    tags.sort();
    tags.dedup();
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_is_stable_hex_and_distinct_per_image() {
        let a = image_md5(7);
        assert_eq!(a, image_md5(7));
        assert_eq!(a.len(), 32);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, image_md5(8));
        assert_eq!(image_file_stem(7).len(), 40);
    }

    #[test]
    fn specs_cover_every_rating() {
        let ratings: std::collections::HashSet<Rating> =
            (0..500).map(|i| PostSpec::for_image(i).rating).collect();
        assert_eq!(ratings.len(), 4);
    }
}
