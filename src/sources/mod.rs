//! Sources: configured instances of three API families, reached through one shared driver.
//!
//! Each family file (`danbooru`, `gelbooru`, `moebooru`) is pure build-and-parse code: it
//! turns a question into a request URL and a response body into common [`Post`]s or
//! [`TagCandidate`]s, without I/O. Sending, pacing, permits and body limits live once, in
//! [`driver`]. A [`Site`] is what the adapters need to know about one configured source.

pub mod danbooru;
pub mod driver;
pub mod error;
pub mod gelbooru;
pub mod moebooru;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{Secret, SourceConfig};
use crate::model::{PostPage, SourceId, TagCandidate};

pub use error::UpstreamError;

/// The API families the service speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Danbooru 2 (`/posts.json`).
    Danbooru,
    /// Gelbooru 0.2.5 with the `@attributes` envelope (gelbooru.com).
    Gelbooru,
    /// Gelbooru 0.2 with bare JSON arrays (safebooru.org, tbib.org).
    GelbooruV02,
    /// Moebooru (yande.re, konachan).
    Moebooru,
}

impl Family {
    /// The family's name as written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Danbooru => "danbooru",
            Family::Gelbooru => "gelbooru",
            Family::GelbooruV02 => "gelbooru_v02",
            Family::Moebooru => "moebooru",
        }
    }

    /// The largest page the family's servers hand out; larger requests are clamped by them.
    pub fn max_page_size(self) -> u32 {
        match self {
            Family::Danbooru => 200,
            Family::Gelbooru => 100,
            Family::GelbooruV02 | Family::Moebooru => 1000,
        }
    }
}

/// An account's two halves: Danbooru's `login` or Gelbooru's `user_id`, and the API key.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: Secret,
    pub api_key: Secret,
}

/// What the adapters need to know about one configured source.
#[derive(Debug, Clone)]
pub struct Site {
    pub id: SourceId,
    pub family: Family,
    /// The API root; may carry a path prefix that every URL keeps.
    pub base_url: Url,
    pub credentials: Option<Credentials>,
}

impl Site {
    /// Builds the site of a configured source.
    pub fn new(id: &str, config: &SourceConfig) -> Site {
        let user = match config.family {
            Family::Gelbooru => config.user_id.clone(),
            _ => config.login.clone(),
        };
        let credentials = match (user, config.api_key.clone()) {
            (Some(user), Some(api_key)) => Some(Credentials { user, api_key }),
            _ => None,
        };
        Site {
            id: id.into(),
            family: config.family,
            base_url: config.base_url.clone(),
            credentials,
        }
    }

    /// `base_url` joined with `path` (which has no leading slash), keeping any path prefix.
    pub fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base_url.clone();
        {
            let mut segments = url.path_segments_mut().expect("http(s) URLs have a path");
            segments.pop_if_empty();
            segments.extend(path.split('/'));
        }
        url.set_query(None);
        url
    }

    /// The URL that lists tags containing `word`, most used first, at most `limit` of them.
    ///
    /// `word` is taken literally: the caller removes wildcard characters (`*`, `%`, `_`, `?`).
    pub fn tags_url(&self, word: &str, limit: u32) -> Url {
        match self.family {
            Family::Danbooru => danbooru::tags_url(self, word, limit),
            Family::Gelbooru | Family::GelbooruV02 => gelbooru::tags_url(self, word, limit),
            Family::Moebooru => moebooru::tags_url(self, word, limit),
        }
    }

    /// Parses a tag-search body.
    pub fn parse_tags(&self, body: &[u8]) -> Result<Vec<TagCandidate>, UpstreamError> {
        match self.family {
            Family::Danbooru => danbooru::parse_tags(body),
            Family::Gelbooru | Family::GelbooruV02 => gelbooru::parse_tags(body),
            Family::Moebooru => moebooru::parse_tags(body),
        }
    }

    /// The URL that lists what `name` is an alias of, where the family has aliases.
    pub fn aliases_url(&self, name: &str) -> Option<Url> {
        (self.family == Family::Danbooru).then(|| danbooru::aliases_url(self, name))
    }

    /// Parses an alias-search body into the names the aliases point to.
    pub fn parse_aliases(&self, body: &[u8]) -> Result<Vec<String>, UpstreamError> {
        danbooru::parse_aliases(body)
    }

    /// The URL of page `page` (1-based) of posts tagged `tag`, `limit` posts per page.
    pub fn posts_url(&self, tag: &str, page: u32, limit: u32) -> Url {
        match self.family {
            Family::Danbooru => danbooru::posts_url(self, tag, page, limit),
            Family::Gelbooru | Family::GelbooruV02 => gelbooru::posts_url(self, tag, page, limit),
            Family::Moebooru => moebooru::posts_url(self, tag, page, limit),
        }
    }

    /// Parses a page of posts.
    pub fn parse_posts(&self, body: &[u8]) -> Result<PostPage, UpstreamError> {
        match self.family {
            Family::Danbooru => danbooru::parse_posts(self, body),
            Family::Gelbooru | Family::GelbooruV02 => gelbooru::parse_posts(self, body),
            Family::Moebooru => moebooru::parse_posts(self, body),
        }
    }

    /// The URL that counts posts tagged `tag`, or `None` where the first page says.
    pub fn count_url(&self, tag: &str) -> Option<Url> {
        match self.family {
            Family::Danbooru => Some(danbooru::count_url(self, tag)),
            Family::Gelbooru => None,
            Family::GelbooruV02 => Some(gelbooru::count_url(self, tag)),
            Family::Moebooru => Some(moebooru::count_url(self, tag)),
        }
    }

    /// Parses a count body.
    pub fn parse_count(&self, body: &[u8]) -> Result<u64, UpstreamError> {
        match self.family {
            Family::Danbooru => danbooru::parse_count(body),
            Family::Gelbooru | Family::GelbooruV02 | Family::Moebooru => {
                gelbooru::parse_xml_count(body)
            }
        }
    }

    /// Turns a non-success answer into the error it means, reading the family's error body.
    pub fn error_for(&self, status: u16, body: &[u8]) -> UpstreamError {
        if let Some(error) = UpstreamError::from_common(status, body) {
            return error;
        }
        match self.family {
            Family::Danbooru => danbooru::error_for(status, body),
            Family::Gelbooru | Family::GelbooruV02 => gelbooru::error_for(self, status, body),
            Family::Moebooru => moebooru::error_for(status, body),
        }
    }
}
