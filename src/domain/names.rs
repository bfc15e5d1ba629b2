//! One definition for an enum's names.
//!
//! An enum whose variants are written as strings (in stored JSON, procedure and
//! calendar files, the API, the database) is declared once with [`named_enum!`],
//! which gives it its wire name per variant and everything derived from that list:
//! `as_str`, a strict `from_name`, `FromStr` (the same, unless the enum reads
//! human input more liberally by hand), `NAMES`, `ALL`, `Display`, and serde's
//! `Serialize`/`Deserialize` through those names. Serde attributes and `as_str`
//! can no longer drift apart, because there is only one list.
//!
//! ```
//! puebla::domain::names::named_enum! {
//!     /// How a round closed.
//!     #[derive(Debug, Clone, Copy, PartialEq, Eq)]
//!     pub enum Closed {
//!         Deadline => "deadline",
//!         AllAnswered => "all_answered",
//!     }
//! }
//! assert_eq!(Closed::AllAnswered.as_str(), "all_answered");
//! assert_eq!("deadline".parse::<Closed>().unwrap(), Closed::Deadline);
//! assert_eq!(Closed::ALL.len(), 2);
//! ```

use std::fmt;

/// A name that is not one of an enum's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UnknownName {
    /// The enum's type name (`Position`, `NoticeKind`...).
    pub what: &'static str,
    /// The name given, as given.
    pub value: String,
    /// Every name the enum has.
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a {}: expected one of {}",
            self.value,
            self.what,
            self.expected.join(", ")
        )
    }
}

/// Declares a field-less enum with one wire name per variant; see the module
/// documentation. Start the invocation with `custom_from_str;` to write `FromStr`
/// by hand (for an enum that reads human input with aliases); `from_name` and
/// serde stay strict either way.
#[macro_export]
macro_rules! named_enum {
    (
        custom_from_str;
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($wire),+].len()] = [$($name::$variant),+];

            /// Every variant's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($wire),+];

            /// The variant's name on the wire, in stored data and in files.
            pub const fn as_str(&self) -> &'static str {
                match self {
                    $( $name::$variant => $wire ),+
                }
            }

            /// The variant with exactly this name.
            pub fn from_name(
                s: &str,
            ) -> ::std::result::Result<Self, $crate::domain::names::UnknownName> {
                match s {
                    $( $wire => Ok($name::$variant), )+
                    _ => Err($crate::domain::names::UnknownName {
                        what: stringify!($name),
                        value: s.to_string(),
                        expected: Self::NAMES,
                    }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                struct Visitor;
                impl ::serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        write!(f, "one of {}", $name::NAMES.join(", "))
                    }
                    fn visit_str<E: ::serde::de::Error>(
                        self,
                        v: &str,
                    ) -> ::std::result::Result<$name, E> {
                        $name::from_name(v).map_err(|_| E::unknown_variant(v, $name::NAMES))
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $($body:tt)* }
    ) => {
        $crate::named_enum! {
            custom_from_str;
            $(#[$meta])*
            $vis enum $name { $($body)* }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::names::UnknownName;
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                Self::from_name(s)
            }
        }
    };
}

pub use crate::named_enum;

#[cfg(test)]
mod tests {
    named_enum! {
        /// A test enum.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Colour {
            /// Documented variant.
            Red => "red",
            DarkBlue => "dark_blue",
        }
    }

    #[test]
    fn names_round_trip_through_every_form() {
        for c in Colour::ALL {
            assert_eq!(Colour::from_name(c.as_str()), Ok(c));
            assert_eq!(c.as_str().parse::<Colour>(), Ok(c));
            assert_eq!(c.to_string(), c.as_str());
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<Colour>(&json).unwrap(), c);
        }
        assert_eq!(Colour::NAMES, &["red", "dark_blue"]);
    }

    #[test]
    fn an_unknown_name_is_an_error_naming_it() {
        let e = "green".parse::<Colour>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "`green` is not a Colour: expected one of red, dark_blue"
        );
        assert!("Red".parse::<Colour>().is_err(), "names are exact");
        let e = serde_json::from_str::<Colour>("\"green\"").unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown variant `green`, expected `red` or `dark_blue`"),
            "{e}"
        );
    }
}
