"""ipsecgw.dataplane"""
