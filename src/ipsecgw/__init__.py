"""ipsecgw: an IKEv1/IPsec VPN gateway with a JUNOSe-style command line."""

__version__ = "0.1.0"
