//! The one way a state, reason or kind becomes text. [`text_enum!`](crate::text_enum) declares
//! an enum together with its text, written once per variant, and derives from that table
//! every conversion: `as_str`, `FromStr`, `Display`, serde (the same text in JSON) and, with
//! the `sqlx` feature, sqlx's `Type`/`Encode`/`Decode` for any database whose `&str` has
//! them, so a backend binds and reads the enum itself.
//!
//! The core stays free of I/O: the `sqlx` feature adds only the type mapping (no driver),
//! and only the storage crates turn it on. It lives here because most of these enums are the
//! core's own, and Rust lets a trait from another crate be implemented for them only here.

/// Text that names no variant of the enum it was read as: a bad request field, a corrupt
/// stored row. Says which kind of value it expected and what it got.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {what}")]
pub struct UnknownText {
    /// What the text was read as, in words ("ledger state").
    pub what: &'static str,
    pub value: String,
}

#[doc(hidden)]
pub use serde as __serde;
#[cfg(feature = "sqlx")]
#[doc(hidden)]
pub use sqlx as __sqlx;

/// Declares an enum whose variants each have one text:
///
/// ```
/// assent_core::text_enum! {
///     /// A colour.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq)]
///     pub enum Colour as "colour" {
///         DarkRed = "dark_red",
///         Blue = "blue",
///     }
/// }
/// assert_eq!(Colour::DarkRed.as_str(), "dark_red");
/// assert_eq!("blue".parse::<Colour>(), Ok(Colour::Blue));
/// assert_eq!(
///     "green".parse::<Colour>().unwrap_err().to_string(),
///     "\"green\" is not a valid colour"
/// );
/// assert_eq!(Colour::ALL, [Colour::DarkRed, Colour::Blue]);
/// ```
///
/// The derives are the caller's; the macro adds `ALL` (declaration order), `TEXTS`,
/// `as_str`, `FromStr`, `Display`, `PartialEq<str>`, `Serialize`/`Deserialize` and, with the
/// `sqlx` feature,
/// the sqlx impls.
#[macro_export]
macro_rules! text_enum {
    // With a last `_ => Name`: any other text is kept as `Name(text)` (a user's id where
    // the known actors are words, a provider's error where the known reasons are codes).
    // Reading text never fails, and what was read is written back byte for byte.
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident as $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
            _ => $other:ident $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// Any other text, kept as it was read.
            $other(String),
        }

        impl $name {
            /// Every variant's text but the catch-all's, in declaration order.
            pub const TEXTS: [&'static str; [$($text),+].len()] = [$($text),+];

            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )+
                    $name::$other(s) => s,
                }
            }

            /// The variant a text names, or the catch-all holding it.
            pub fn from_text(s: &str) -> Self {
                match s {
                    $( $text => $name::$variant, )+
                    _ => $name::$other(s.to_string()),
                }
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = $crate::text::UnknownText;
            fn from_str(s: &str) -> ::core::result::Result<Self, Self::Err> {
                Ok($name::from_text(s))
            }
        }

        impl ::core::convert::From<&str> for $name {
            fn from(s: &str) -> Self {
                $name::from_text(s)
            }
        }

        impl ::core::convert::From<String> for $name {
            fn from(s: String) -> Self {
                $name::from_text(&s)
            }
        }

        impl ::core::cmp::PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.as_str() == other
            }
        }

        $crate::__text_enum_common!($name, $what);
        $crate::__text_enum_sqlx_open!($name);
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident as $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];
            /// Every variant's text, in declaration order.
            pub const TEXTS: [&'static str; [$($text),+].len()] = [$($text),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = $crate::text::UnknownText;
            fn from_str(s: &str) -> ::core::result::Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err($crate::text::UnknownText {
                        what: $what,
                        value: s.to_string(),
                    }),
                }
            }
        }

        $crate::__text_enum_common!($name, $what);
        $crate::__text_enum_sqlx!($name);
    };
}

/// What both forms of [`text_enum!`] derive from `as_str` and `FromStr` alike: `Display`,
/// comparison with text, and serde as the text.
#[doc(hidden)]
#[macro_export]
macro_rules! __text_enum_common {
    ($name:ident, $what:literal) => {
        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        // Compared with its text as with a string, so `entry.new_state == "opted_out"` reads
        // as it did when it was one.
        impl ::core::cmp::PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
        impl ::core::cmp::PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl $crate::text::__serde::Serialize for $name {
            fn serialize<S: $crate::text::__serde::Serializer>(
                &self,
                s: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::text::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::text::__serde::Deserializer<'de>>(
                d: D,
            ) -> ::core::result::Result<Self, D::Error> {
                struct Visitor;
                impl $crate::text::__serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        f.write_str(concat!("a ", $what))
                    }
                    fn visit_str<E: $crate::text::__serde::de::Error>(
                        self,
                        v: &str,
                    ) -> ::core::result::Result<$name, E> {
                        // The same message serde's derive gives, which API clients have seen.
                        v.parse().map_err(|_| E::unknown_variant(v, &$name::TEXTS))
                    }
                }
                d.deserialize_str(Visitor)
            }
        }
    };
}

/// The sqlx half of [`text_enum!`]: the enum is stored as its text wherever `&str` is.
#[cfg(feature = "sqlx")]
#[doc(hidden)]
#[macro_export]
macro_rules! __text_enum_sqlx {
    ($name:ident) => {
        impl<DB: $crate::text::__sqlx::Database> $crate::text::__sqlx::Type<DB> for $name
        where
            str: $crate::text::__sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as $crate::text::__sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as $crate::text::__sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: $crate::text::__sqlx::Database> $crate::text::__sqlx::Encode<'q, DB> for $name
        where
            &'static str: $crate::text::__sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as $crate::text::__sqlx::Database>::ArgumentBuffer,
            ) -> ::core::result::Result<
                $crate::text::__sqlx::encode::IsNull,
                $crate::text::__sqlx::error::BoxDynError,
            > {
                <&'static str as $crate::text::__sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: $crate::text::__sqlx::Database> $crate::text::__sqlx::Decode<'r, DB> for $name
        where
            &'r str: $crate::text::__sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as $crate::text::__sqlx::Database>::ValueRef<'r>,
            ) -> ::core::result::Result<Self, $crate::text::__sqlx::error::BoxDynError> {
                let text = <&'r str as $crate::text::__sqlx::Decode<'r, DB>>::decode(value)?;
                Ok(text.parse::<$name>()?)
            }
        }
    };
}

#[cfg(not(feature = "sqlx"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __text_enum_sqlx {
    ($name:ident) => {};
}

/// The sqlx half of a [`text_enum!`] with a catch-all: stored as its text, which may be
/// the catch-all's own (hence owned when bound).
#[cfg(feature = "sqlx")]
#[doc(hidden)]
#[macro_export]
macro_rules! __text_enum_sqlx_open {
    ($name:ident) => {
        impl<DB: $crate::text::__sqlx::Database> $crate::text::__sqlx::Type<DB> for $name
        where
            str: $crate::text::__sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as $crate::text::__sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as $crate::text::__sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: $crate::text::__sqlx::Database> $crate::text::__sqlx::Encode<'q, DB> for $name
        where
            String: $crate::text::__sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as $crate::text::__sqlx::Database>::ArgumentBuffer,
            ) -> ::core::result::Result<
                $crate::text::__sqlx::encode::IsNull,
                $crate::text::__sqlx::error::BoxDynError,
            > {
                <String as $crate::text::__sqlx::Encode<'q, DB>>::encode(
                    self.as_str().to_string(),
                    buf,
                )
            }
        }

        impl<'r, DB: $crate::text::__sqlx::Database> $crate::text::__sqlx::Decode<'r, DB> for $name
        where
            &'r str: $crate::text::__sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as $crate::text::__sqlx::Database>::ValueRef<'r>,
            ) -> ::core::result::Result<Self, $crate::text::__sqlx::error::BoxDynError> {
                let text = <&'r str as $crate::text::__sqlx::Decode<'r, DB>>::decode(value)?;
                Ok($name::from_text(text))
            }
        }
    };
}

#[cfg(not(feature = "sqlx"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __text_enum_sqlx_open {
    ($name:ident) => {};
}

#[cfg(test)]
mod tests {
    use crate::consent::{LedgerState, MarketingStatus};

    #[test]
    fn json_text_is_the_enums_text_and_a_bad_one_is_named() {
        assert_eq!(
            serde_json::to_string(&MarketingStatus::OptedIn)
                .ok()
                .as_deref(),
            Some("\"opted_in\"")
        );
        let back: Result<MarketingStatus, _> = serde_json::from_str("\"opted_out\"");
        assert_eq!(back.ok(), Some(MarketingStatus::OptedOut));
        // The message serde's derive gave, which API clients may match on.
        let bad = serde_json::from_str::<MarketingStatus>("\"maybe\"")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            bad.starts_with("unknown variant `maybe`, expected one of `none`, `pending`"),
            "{bad}"
        );
    }

    crate::text_enum! {
        #[derive(Debug, Clone, PartialEq, Eq)]
        enum Who as "who" {
            Customer = "customer",
            Api = "api",
            _ => User,
        }
    }

    #[test]
    fn a_catch_all_keeps_any_other_text_as_it_was() {
        assert_eq!("api".parse::<Who>(), Ok(Who::Api));
        assert_eq!(Who::from("u-1"), Who::User("u-1".into()));
        assert_eq!(Who::User("u-1".into()).as_str(), "u-1");
        assert_eq!(Who::TEXTS, ["customer", "api"]);
        let json = serde_json::to_string(&Who::User("u-1".into())).ok();
        assert_eq!(json.as_deref(), Some("\"u-1\""));
        let back: Result<Who, _> = serde_json::from_str("\"customer\"");
        assert_eq!(back.ok(), Some(Who::Customer));
    }

    #[test]
    fn every_variant_reads_back_from_its_text() {
        for s in LedgerState::ALL {
            assert_eq!(s.as_str().parse::<LedgerState>(), Ok(s));
            assert_eq!(s.to_string(), s.as_str());
            assert!(s == s.as_str());
        }
        let err = "sideways"
            .parse::<LedgerState>()
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("\"sideways\" is not a valid ledger state")
        );
    }
}
