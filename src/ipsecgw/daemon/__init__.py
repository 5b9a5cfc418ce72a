"""ipsecgw.daemon"""
