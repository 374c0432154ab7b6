//! `packets!` turns a table of `Name = id { field: Type, ... }` rows into: an id enum, one
//! struct per packet (fields encoded in the order written), and an enum over all packets
//! with `decode`/`encode`. Each direction has exactly one such table, so a packet's id and
//! layout live in one obvious place.

macro_rules! packets {
    (
        $(#[$enum_meta:meta])*
        pub enum $Enum:ident, ids $Id:ident {
            $(
                $(#[$meta:meta])*
                $Name:ident = $id:literal { $($field:ident : $ty:ty),* $(,)? }
            ),* $(,)?
        }
    ) => {
        /// The packet ids of this direction, as numbered by protocol 19.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum $Id {
            $($Name = $id),*
        }

        impl $Id {
            /// Every id of this direction, in table order.
            pub const ALL: &'static [$Id] = &[$($Id::$Name),*];

            /// The id for a number, if protocol 19 defines one in this direction.
            pub const fn from_u16(id: u16) -> Option<Self> {
                match id {
                    $($id => Some(Self::$Name),)*
                    _ => None,
                }
            }

            /// The packet's name, for logs and metrics.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$Name => stringify!($Name),)*
                }
            }
        }

        $(
            $(#[$meta])*
            #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
            pub struct $Name {
                $(pub $field: $ty),*
            }

            impl $Name {
                pub const ID: $Id = $Id::$Name;
            }

            impl $crate::wire::Wire for $Name {
                #[allow(unused_variables)]
                fn encode(&self, out: &mut Vec<u8>) {
                    $($crate::wire::Wire::encode(&self.$field, out);)*
                }
                #[allow(unused_variables)]
                fn decode(r: &mut $crate::wire::Reader<'_>) -> Result<Self, $crate::DecodeError> {
                    Ok(Self { $($field: <$ty as $crate::wire::Wire>::decode(r)?),* })
                }
            }

            impl From<$Name> for $Enum {
                fn from(p: $Name) -> Self {
                    $Enum::$Name(p)
                }
            }
        )*

        $(#[$enum_meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "packet", content = "fields")]
        pub enum $Enum {
            $($Name($Name)),*
        }

        impl $Enum {
            /// This packet's id.
            pub fn id(&self) -> $Id {
                match self {
                    $(Self::$Name(_) => $Id::$Name,)*
                }
            }

            /// Decodes a payload of packet `id`. Bytes after the last field are ignored:
            /// some client builds append padding, and ignoring it costs nothing.
            pub fn decode(id: u16, payload: &[u8]) -> Result<Self, $crate::DecodeError> {
                let mut r = $crate::wire::Reader::new(payload);
                match $Id::from_u16(id) {
                    $(Some($Id::$Name) => {
                        <$Name as $crate::wire::Wire>::decode(&mut r).map(Self::$Name)
                    })*
                    None => Err($crate::DecodeError::UnknownPacket(id)),
                }
            }

            /// Appends the framed packet (header and payload) to `out`.
            pub fn encode(&self, out: &mut Vec<u8>) {
                let at = $crate::frame::begin_packet(out, self.id() as u16);
                match self {
                    $(Self::$Name(p) => $crate::wire::Wire::encode(p, out),)*
                }
                $crate::frame::finish_packet(out, at);
            }

            /// The framed packet as a new buffer.
            pub fn to_bytes(&self) -> bytes::Bytes {
                let mut out = Vec::with_capacity(32);
                self.encode(&mut out);
                out.into()
            }
        }
    };
}

pub(crate) use packets;
