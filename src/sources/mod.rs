//! Sources: configured instances of three API families, reached through one shared driver.
//!
//! Each family file (`danbooru`, `gelbooru`, `moebooru`) is pure build-and-parse code: it
//! turns a question into a request URL and a response body into common [`Post`](crate::model::Post)s or
//! [`TagCandidate`]s, without I/O. Sending, pacing, permits and body limits live once, in
//! [`driver`]. A [`Site`] is what the adapters need to know about one configured source.

pub mod circuit;
pub mod danbooru;
pub mod driver;
pub mod error;
mod fields;
pub mod gelbooru;
pub mod moebooru;
pub mod recent;

use serde::{Deserialize, Serialize};
use url::{Position, Url};

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

    /// How many results deep the family's servers serve pages of one search, where a page
    /// reaching past that fails. The Gelbooru families stop at about 20 000 results (the
    /// rest is reached by searching again below the lowest id seen; see
    /// [`Site::below_id`]). Danbooru's ceiling (page 1000) lies beyond `search.max_pages`
    /// and Moebooru has none.
    pub fn max_depth(self) -> Option<u64> {
        match self {
            Family::Gelbooru | Family::GelbooruV02 => Some(20_000),
            Family::Danbooru | Family::Moebooru => None,
        }
    }

    /// Whether the family's post counts are exact, so that a page the count says holds
    /// posts and that comes back empty has lost them. Danbooru estimates large counts
    /// (`estimate_count`), so a page past the real end may be empty with nothing lost.
    pub fn counts_exactly(self) -> bool {
        !matches!(self, Family::Danbooru)
    }

    /// The query parameter names that carry an account's two halves, where the family has
    /// accounts the service can use (Moebooru's salted password hash is not supported).
    pub fn credential_names(self) -> Option<(&'static str, &'static str)> {
        match self {
            Family::Danbooru => Some(("login", "api_key")),
            Family::Gelbooru | Family::GelbooruV02 => Some(("user_id", "api_key")),
            Family::Moebooru => None,
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
            Family::Gelbooru | Family::GelbooruV02 => config.user_id.clone(),
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

    /// The API URL of `path` with the query `params` and, when the site has credentials, the
    /// family's credential parameters; every adapter request goes through here, so no request
    /// of a configured account can leave without them.
    ///
    /// Values are form-encoded, so tags with spaces, `&`, `#`, `%`, `+` or non-ASCII letters
    /// reach the site intact.
    pub fn api_url(&self, path: &str, params: &[(&str, &str)]) -> Url {
        let mut url = self.endpoint(path);
        {
            let mut query = url.query_pairs_mut();
            query.extend_pairs(params);
            if let (Some(account), Some((user, key))) =
                (&self.credentials, self.family.credential_names())
            {
                query.append_pair(user, account.user.expose());
                query.append_pair(key, account.api_key.expose());
            }
        }
        url
    }

    /// `base_url` with its path prefix, then `path`: a page on the site or a site-relative file.
    pub fn join(&self, path: &str) -> String {
        let root = &self.base_url[..Position::AfterPath];
        format!(
            "{}/{}",
            root.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    /// An image URL from an upstream made absolute: empty is `None`, `http(s)` URLs are kept
    /// as they are, protocol-relative ones (`//host/x`) take the base's scheme, and paths are
    /// joined to `base_url` keeping its path prefix.
    ///
    /// URLs with another scheme (`data:`, `javascript:`) are `None`: clients are handed only
    /// links they can fetch.
    pub fn absolute_url(&self, raw: &str) -> Option<String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        if raw.starts_with("//") {
            return Some(format!("{}:{raw}", self.base_url.scheme()));
        }
        match scheme_of(raw) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http") => Some(raw.to_owned()),
            Some(scheme) if scheme.eq_ignore_ascii_case("https") => Some(raw.to_owned()),
            Some(_) => None,
            None => Some(self.join(raw)),
        }
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
        let parsed = match self.family {
            Family::Danbooru => danbooru::parse_tags(body),
            Family::Gelbooru | Family::GelbooruV02 => gelbooru::parse_tags(body),
            Family::Moebooru => moebooru::parse_tags(body),
        };
        parsed.map_err(|error| self.redact(error))
    }

    /// The URL that lists what `name` is an alias of, where the family has aliases.
    pub fn aliases_url(&self, name: &str) -> Option<Url> {
        (self.family == Family::Danbooru).then(|| danbooru::aliases_url(self, name))
    }

    /// Parses an alias-search body into the names the aliases point to.
    pub fn parse_aliases(&self, body: &[u8]) -> Result<Vec<String>, UpstreamError> {
        danbooru::parse_aliases(body).map_err(|error| self.redact(error))
    }

    /// The URL of page `page` (1-based) of posts tagged `tag`, `limit` posts per page.
    pub fn posts_url(&self, tag: &str, page: u32, limit: u32) -> Url {
        match self.family {
            Family::Danbooru => danbooru::posts_url(self, tag, page, limit),
            Family::Gelbooru | Family::GelbooruV02 => gelbooru::posts_url(self, tag, page, limit),
            Family::Moebooru => moebooru::posts_url(self, tag, page, limit),
        }
    }

    /// The search for `tag`'s posts with ids below `id` (every family reads the `id:<N`
    /// metatag): where [`Family::max_depth`] stops paging, the next posts are this
    /// search's first, since results come newest, so highest id, first.
    pub fn below_id(&self, tag: &str, id: u64) -> String {
        format!("{tag} id:<{id}")
    }

    /// Parses a page of posts.
    pub fn parse_posts(&self, body: &[u8]) -> Result<PostPage, UpstreamError> {
        let parsed = match self.family {
            Family::Danbooru => danbooru::parse_posts(self, body),
            Family::Gelbooru | Family::GelbooruV02 => gelbooru::parse_posts(self, body),
            Family::Moebooru => moebooru::parse_posts(self, body),
        };
        parsed.map_err(|error| self.redact(error))
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
        let parsed = match self.family {
            Family::Danbooru => danbooru::parse_count(body),
            Family::Gelbooru | Family::GelbooruV02 | Family::Moebooru => {
                gelbooru::parse_xml_count(body)
            }
        };
        parsed.map_err(|error| self.redact(error))
    }

    /// Turns a non-success answer into the error it means, reading the family's error body.
    ///
    /// A refusal the family states in its own error document (Moebooru's
    /// `success:false` with HTTP 500) wins over the generic reading of the status, which
    /// would call it a server failure and drop the site's reason.
    pub fn error_for(&self, status: u16, body: &[u8]) -> UpstreamError {
        let refusal = match self.family {
            Family::Moebooru => moebooru::refusal(status, body),
            _ => None,
        };
        if let Some(error) = refusal {
            return self.redact(error);
        }
        if let Some(error) = UpstreamError::from_common(status, body) {
            // A server failure keeps the message of the family's own error body, if any.
            return self.redact(error.with_reason(fields::error_reason(body)));
        }
        let error = match self.family {
            Family::Danbooru => danbooru::error_for(status, body),
            Family::Gelbooru | Family::GelbooruV02 => gelbooru::error_for(self, status, body),
            Family::Moebooru => moebooru::error_for(status, body),
        };
        self.redact(error)
    }

    /// `error` with this site's credentials blotted out of every text an upstream supplied:
    /// a site, or a proxy in front of it, may quote the request's parameters back in an
    /// error body, and the error's message reaches logs and clients.
    pub fn redact(&self, error: UpstreamError) -> UpstreamError {
        let Some(credentials) = &self.credentials else {
            return error;
        };
        let secrets = [credentials.user.expose(), credentials.api_key.expose()];
        error.map_texts(|text| redact_secrets(text, &secrets))
    }
}

/// Shortest credential blotted out of messages; a shorter one (a low Gelbooru user id)
/// would garble ordinary numbers and is no secret worth the noise.
const MIN_REDACTED_CHARS: usize = 4;

/// `text` with each of `secrets`, as written or as a URL encodes it, replaced by
/// `[redacted]`.
fn redact_secrets(mut text: String, secrets: &[&str]) -> String {
    for secret in secrets
        .iter()
        .filter(|s| s.chars().count() >= MIN_REDACTED_CHARS)
    {
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        for spelling in [secret.to_string(), form.replace('+', "%20"), form] {
            if text.contains(&spelling) {
                text = text.replace(&spelling, "[redacted]");
            }
        }
    }
    text
}

/// The scheme of an absolute URL (`https` of `https://x`), or `None` for a relative reference.
fn scheme_of(raw: &str) -> Option<&str> {
    let end = raw.find([':', '/', '?', '#'])?;
    let scheme = &raw[..end];
    let valid = raw[end..].starts_with(':')
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

#[cfg(test)]
mod tests {
    use super::fields::testing;
    use super::*;

    const ACCOUNT: &str = "login = \"anya-login\"\napi_key = \"key&with spaces\"\n";

    #[test]
    fn an_upstream_that_quotes_the_credentials_back_is_redacted() {
        let site = testing::site("danbooru", ACCOUNT);
        let body =
            br#"{"success":false,"message":"api_key=key%26with+spaces for anya-login is banned"}"#;

        let error = site.error_for(403, body).to_string();

        assert!(!error.contains("anya-login"), "{error}");
        assert!(!error.contains("key%26with+spaces"), "{error}");
        assert!(
            error.contains("[redacted] for [redacted] is banned"),
            "{error}"
        );
    }

    #[test]
    fn parse_errors_quoting_the_credentials_are_redacted() {
        let site = testing::site("gelbooru", "user_id = 4242421\napi_key = \"gel-key-77\"\n");
        let body =
            br#"<?xml version="1.0"?><response success="false" reason="user 4242421 is banned"/>"#;

        let shown = site.parse_posts(body).unwrap_err().to_string();

        assert!(shown.contains("user [redacted] is banned"), "{shown}");
    }

    #[test]
    fn short_or_absent_credentials_leave_messages_alone() {
        assert_eq!(
            redact_secrets("HTTP 500 from 12".to_string(), &["12"]),
            "HTTP 500 from 12"
        );
        let anonymous = testing::site("danbooru", "");
        let error = anonymous.error_for(403, br#"{"message":"anya-login"}"#);
        assert!(error.to_string().contains("anya-login"));
    }
}
