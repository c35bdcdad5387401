//! The common vocabulary every layer shares: posts as adapters produce them, ratings, tag
//! categories and tag candidates.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A source's id as configured (`danbooru`, `konachan`, ...); cheap to clone.
pub type SourceId = Arc<str>;

/// A content rating on the four-level scale Danbooru and Gelbooru use today.
///
/// The order is strictness: `General < Sensitive < Questionable < Explicit`, so the strictest
/// rating of a merged image is the maximum of its sources' ratings.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    General,
    Sensitive,
    Questionable,
    Explicit,
}

impl Rating {
    /// Every rating, mildest first.
    pub const ALL: [Rating; 4] = [
        Rating::General,
        Rating::Sensitive,
        Rating::Questionable,
        Rating::Explicit,
    ];

    /// The rating's name as it appears in the HTTP contract.
    pub fn as_str(self) -> &'static str {
        match self {
            Rating::General => "general",
            Rating::Sensitive => "sensitive",
            Rating::Questionable => "questionable",
            Rating::Explicit => "explicit",
        }
    }

    /// Parses a rating name from the HTTP contract (`general`, ...), ignoring case.
    pub fn from_name(name: &str) -> Option<Rating> {
        Rating::ALL
            .into_iter()
            .find(|rating| rating.as_str().eq_ignore_ascii_case(name))
    }

    /// A bit for this rating, for compact sets of ratings.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Rating {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of thing a tag names, unified across the sites' numeric codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TagCategory {
    Character,
    Copyright,
    Artist,
    General,
    Meta,
    Other,
}

impl TagCategory {
    /// Maps the numeric category all three families share (0 general, 1 artist,
    /// 3 copyright, 4 character, 5 meta); every other code is `Other`.
    pub fn from_code(code: i64) -> TagCategory {
        match code {
            0 => TagCategory::General,
            1 => TagCategory::Artist,
            3 => TagCategory::Copyright,
            4 => TagCategory::Character,
            5 => TagCategory::Meta,
            _ => TagCategory::Other,
        }
    }
}

/// A tag as a site's tag API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TagCandidate {
    /// The tag exactly as the site spells it (`anya_(spy_x_family)`).
    pub name: String,
    /// How many posts carry the tag, as the site counts them.
    pub post_count: u64,
    pub category: TagCategory,
}

/// One post on one source, in the common shape every adapter produces.
#[derive(Debug, Clone, PartialEq)]
pub struct Post {
    pub source: SourceId,
    /// The post's id on its source.
    pub id: u64,
    /// Lowercase hex MD5 of the file, when the source shows it.
    pub md5: Option<String>,
    /// Absolute URL of the full-size file.
    pub file_url: Option<String>,
    pub sample_url: Option<String>,
    pub preview_url: Option<String>,
    /// Width of the full-size file in pixels (0 when the source does not say).
    pub width: u32,
    /// Height of the full-size file in pixels (0 when the source does not say).
    pub height: u32,
    pub rating: Rating,
    pub score: i64,
    pub tags: Tags,
    /// The post's page on its site, for people.
    pub post_url: String,
}

/// What an adapter makes of one page of posts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PostPage {
    pub posts: Vec<Post>,
    /// Posts dropped because they carry neither an MD5 nor a file URL (restricted posts).
    pub skipped: usize,
    /// The total number of matching posts, when the page itself says (Gelbooru's envelope).
    pub total: Option<u64>,
}

/// A post's tags, held as one space-separated string.
///
/// A search holds tens of thousands of posts whose thirty-odd tags each would otherwise be
/// an allocation of their own; one string per post keeps a 600-page search small. Tags
/// never contain white space on any of the sites, so a space is a safe separator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(String);

impl Tags {
    /// The tags of a white-space separated list, in its order.
    pub fn from_text(text: &str) -> Tags {
        let mut tags = Tags(String::with_capacity(text.len()));
        for tag in text.split_whitespace() {
            tags.push(tag);
        }
        tags
    }

    /// Each tag, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ').filter(|tag| !tag.is_empty())
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no tags.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `tag` is one of them.
    pub fn contains(&self, tag: &str) -> bool {
        self.iter().any(|known| known == tag)
    }

    /// Appends `tag` (which holds no white space).
    pub fn push(&mut self, tag: &str) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        self.0.push_str(tag);
    }

    /// The same tags sorted, each once.
    pub fn sorted(&self) -> Tags {
        let mut tags: Vec<&str> = self.iter().collect();
        tags.sort_unstable();
        tags.dedup();
        Tags(tags.join(" "))
    }
}

impl Serialize for Tags {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<const N: usize> PartialEq<[&str; N]> for Tags {
    fn eq(&self, other: &[&str; N]) -> bool {
        self.iter().eq(other.iter().copied())
    }
}

impl PartialEq<Vec<&str>> for Tags {
    fn eq(&self, other: &Vec<&str>) -> bool {
        self.iter().eq(other.iter().copied())
    }
}

impl PartialEq<Vec<String>> for Tags {
    fn eq(&self, other: &Vec<String>) -> bool {
        self.iter().eq(other.iter().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_keep_order_and_normalise_white_space() {
        let tags = Tags::from_text("  b\ta   c\n");
        assert_eq!(tags, ["b", "a", "c"]);
        assert_eq!(tags.len(), 3);
        assert!(tags.contains("a") && !tags.contains("d"));
        assert_eq!(serde_json::to_string(&tags).unwrap(), r#"["b","a","c"]"#);
        assert!(Tags::from_text("   ").is_empty());
    }

    #[test]
    fn sorted_tags_are_unique() {
        let mut tags = Tags::from_text("b a");
        tags.push("a");
        assert_eq!(tags.sorted(), ["a", "b"]);
    }
}
