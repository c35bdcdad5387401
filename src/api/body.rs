//! [`JsonChunks`]: a `200 application/json` answer sent as ready pieces of JSON text.
//!
//! A cached search answer is mostly slices of the cache (see
//! [`AnswerText::into_chunks`](crate::search::AnswerText::into_chunks)); sending them as
//! they are, with their exact total length, spares copying a page of images into one
//! buffer for every request. hyper writes the pieces out together.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderValue, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// JSON text in pieces that together make one document.
#[derive(Debug)]
pub struct JsonChunks {
    chunks: VecDeque<Bytes>,
    remaining: u64,
}

impl JsonChunks {
    /// The document made of `chunks`, in order.
    pub fn new(chunks: Vec<Bytes>) -> JsonChunks {
        let remaining = chunks.iter().map(|chunk| chunk.len() as u64).sum();
        JsonChunks {
            chunks: chunks.into(),
            remaining,
        }
    }
}

impl http_body::Body for JsonChunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let chunk = self.chunks.pop_front();
        if let Some(chunk) = &chunk {
            self.remaining -= chunk.len() as u64;
        }
        Poll::Ready(chunk.map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Exact, so the answer carries a `Content-Length` rather than chunked encoding.
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

impl IntoResponse for JsonChunks {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::new(self));
        (response.headers_mut()).insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_pieces_arrive_as_one_document_with_its_length() {
        let chunks = JsonChunks::new(vec![
            Bytes::from_static(b"{\"a\":["),
            Bytes::from_static(b"1,2"),
            Bytes::from_static(b"]}"),
        ]);
        let response = chunks.into_response();
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let body = response.into_body();
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(11));
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert_eq!(&bytes[..], b"{\"a\":[1,2]}");
    }
}
